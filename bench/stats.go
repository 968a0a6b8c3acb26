package bench

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuTime returns the CPU time (user and system) the whole process has used
// so far, from getrusage(RUSAGE_SELF): both stacks, the application
// goroutines and the kernel work done in this process's system calls.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// spread is the median, min and max of one metric over rounds.
type spread struct{ med, min, max float64 }

func over(ss []Sample, key string) spread {
	v := make([]float64, 0, len(ss))
	for _, s := range ss {
		if x, ok := s[key]; ok {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return spread{math.NaN(), math.NaN(), math.NaN()}
	}
	slices.Sort(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return spread{m, v[0], v[len(v)-1]}
}

// show formats a metric over rounds: "9.7 (7.1–10.2)", or "9.7" when there
// is one round or the values agree.
func show(ss []Sample, key string, f func(float64) string) string {
	sp := over(ss, key)
	if math.IsNaN(sp.med) {
		return "?"
	}
	m, lo, hi := f(sp.med), f(sp.min), f(sp.max)
	if len(ss) < 2 || lo == hi {
		return m
	}
	return fmt.Sprintf("%s (%s–%s)", m, lo, hi)
}

// sig formats x with about three significant digits.
func sig(x float64) string {
	switch a := math.Abs(x); {
	case a >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(x, 'f', 2, 64)
	default:
		return strconv.FormatFloat(x, 'f', 3, 64)
	}
}

// kilo formats a rate: 159k, 1.2M, 950.
func kilo(x float64) string {
	switch {
	case x >= 1e6:
		return sig(x/1e6) + "M"
	case x >= 1e3:
		return sig(x/1e3) + "k"
	default:
		return sig(x)
	}
}

// bytesInt formats a byte count with thousands separators: 1,856.
func bytesInt(x float64) string {
	s := strconv.FormatInt(int64(math.Round(x)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// quantile returns the q-quantile (0..1) of sorted durations, by the
// nearest-rank method.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func itoa(i int) string { return strconv.Itoa(i) }

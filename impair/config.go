package impair

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Dist is the distribution of the jitter added to the delay.
type Dist uint8

const (
	// Uniform draws jitter uniformly from [-Jitter, +Jitter], as netem does
	// without a distribution table.
	Uniform Dist = iota
	// Normal draws jitter from a normal distribution with standard
	// deviation Jitter, clipped to [-4 Jitter, +4 Jitter].
	Normal
)

// String returns "uniform" or "normal".
func (d Dist) String() string {
	switch d {
	case Uniform:
		return "uniform"
	case Normal:
		return "normal"
	}
	return "dist(" + strconv.Itoa(int(d)) + ")"
}

// GilbertElliott is a two-state Markov chain for bursty loss. The chain
// starts in the good state. For each frame copy that reaches the loss
// stage it decides loss with the current state's probability and then
// moves (good→bad with probability P, bad→good with probability R), as
// netem's gemodel does.
//
// In the classic notation (and in the string form of Config) the
// parameters are p, r, h and k, where h is the loss probability in the bad
// state and 1-k the loss probability in the good state. The fields here are
// loss probabilities, so that the zero value of LossGood means no loss in
// the good state:
//
//	LossBad  = h     (1 for the simple Gilbert model: every frame in the bad state is lost)
//	LossGood = 1 - k (usually 0)
//
// With LossBad = 1 and LossGood = 0, loss bursts have a mean length of 1/R
// frames and the long-run loss rate is P/(P+R).
type GilbertElliott struct {
	// P is the probability of moving from the good to the bad state.
	P float64
	// R is the probability of moving from the bad to the good state.
	R float64
	// LossBad is the loss probability in the bad state (h).
	LossBad float64
	// LossGood is the loss probability in the good state (1-k).
	LossGood float64
}

// Enabled reports whether the chain can ever lose a frame.
func (g GilbertElliott) Enabled() bool {
	return (g.P > 0 && g.LossBad > 0) || g.LossGood > 0
}

// Config describes the impairments of one direction of a link. The zero
// value is a perfect link: no loss, no delay, unlimited bandwidth, no MTU.
//
// Probabilities are in [0, 1]; Validate rejects values outside.
type Config struct {
	// Loss is the probability that a frame copy is lost (Bernoulli).
	Loss float64
	// GE is a Gilbert–Elliott chain for bursty loss; it is in use when
	// GE.Enabled(). A copy is lost if either Loss or GE loses it.
	GE GilbertElliott

	// Delay is the one-way propagation delay.
	Delay time.Duration
	// Jitter is the spread of the delay: the half-width of the uniform
	// range, or the standard deviation of the normal one (see Dist).
	Jitter time.Duration
	// Dist is the distribution of the jitter.
	Dist Dist
	// KeepOrder keeps frames in FIFO order despite jitter (see the package
	// documentation); only Reorder then reorders.
	KeepOrder bool
	// Reorder is the probability that a copy skips the delay and overtakes
	// the frames in flight (netem's reorder).
	Reorder float64

	// Dup is the probability that a frame is duplicated.
	Dup float64
	// Corrupt is the probability that one bit of a copy is flipped.
	Corrupt float64
	// CorruptOffset is the first byte that corruption may touch (for
	// example 14 to spare the Ethernet header, or 54 to hit only TCP
	// payload). A frame no longer than CorruptOffset is never corrupted.
	CorruptOffset int

	// Rate is the bandwidth in bits per second; 0 means unlimited.
	Rate uint64
	// Queue is the depth, in frames, of the drop-tail queue in front of
	// the bandwidth limit; 0 means DefaultQueue. It has no effect without
	// a Rate.
	Queue int
	// QueueBytes additionally limits that queue in bytes; 0 means no byte
	// limit.
	QueueBytes int
	// AQM is the queue's active queue management: drop-tail (the zero
	// value) or CoDel, which drops — or, with AQM.ECN, marks — packets
	// once they wait too long. It needs a Rate.
	AQM AQM

	// MTU drops frames longer than MTU+LinkHeader bytes; 0 means no limit.
	MTU int
	// LinkHeader is the length of the link header counted in a frame
	// passed to Offer but not in the MTU (14 for Ethernet, 0 for IP).
	// The endpoints in link/pipe and link/fault set it from their medium.
	LinkHeader int
}

// DefaultQueue is the bottleneck queue depth when Config.Queue is 0 (like
// netem's default limit and a common txqueuelen).
const DefaultQueue = 1000

// Validate reports the first field that is out of range.
func (c *Config) Validate() error {
	probs := []struct {
		name string
		v    float64
	}{
		{"loss", c.Loss}, {"reorder", c.Reorder}, {"dup", c.Dup}, {"corrupt", c.Corrupt},
		{"ge p", c.GE.P}, {"ge r", c.GE.R}, {"ge h", c.GE.LossBad}, {"ge k", 1 - c.GE.LossGood},
	}
	for _, p := range probs {
		if !(p.v >= 0 && p.v <= 1) { // also rejects NaN
			return fmt.Errorf("impair: %s probability %v not in [0, 1]", p.name, p.v)
		}
	}
	switch {
	case c.Delay < 0:
		return fmt.Errorf("impair: negative delay %v", c.Delay)
	case c.Jitter < 0:
		return fmt.Errorf("impair: negative jitter %v", c.Jitter)
	case c.Dist > Normal:
		return fmt.Errorf("impair: unknown jitter distribution %d", c.Dist)
	case c.CorruptOffset < 0:
		return fmt.Errorf("impair: negative corrupt offset %d", c.CorruptOffset)
	case c.Queue < 0 || c.QueueBytes < 0:
		return errors.New("impair: negative queue limit")
	case c.MTU < 0 || c.LinkHeader < 0:
		return errors.New("impair: negative MTU or link header")
	case c.AQM.Kind > CoDel:
		return fmt.Errorf("impair: unknown queue discipline %d", c.AQM.Kind)
	case c.AQM.Target < 0 || c.AQM.Interval < 0:
		return errors.New("impair: negative CoDel target or interval")
	case c.AQM.Kind == DropTail && (c.AQM.Target != 0 || c.AQM.Interval != 0 || c.AQM.ECN):
		return errors.New("impair: target, interval and ecn need codel")
	case c.AQM.Kind != DropTail && c.Rate == 0:
		return fmt.Errorf("impair: %v needs a rate (without one there is no queue)", c.AQM.Kind)
	}
	return nil
}

// String returns the configuration in the form ParseConfig reads, listing
// only the fields that differ from the zero value, in a fixed order:
//
//	loss=1%,ge=p:1%/r:30%/h:50%/k:100%,delay=50ms,jitter=10ms,dist=normal,keeporder,
//	reorder=25%,dup=1%,corrupt=0.1%,corruptoff=14,rate=100mbit,queue=1000,
//	queuebytes=65536,codel,target=5ms,interval=100ms,ecn,mtu=1500,hdr=14
//
// The zero Config gives "none".
func (c Config) String() string {
	var b strings.Builder
	add := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		if v != "" {
			b.WriteByte('=')
			b.WriteString(v)
		}
	}
	if c.Loss != 0 {
		add("loss", pct(c.Loss))
	}
	if c.GE != (GilbertElliott{}) {
		add("ge", "p:"+pct(c.GE.P)+"/r:"+pct(c.GE.R)+"/h:"+pct(c.GE.LossBad)+"/k:"+pct(1-c.GE.LossGood))
	}
	if c.Delay != 0 {
		add("delay", c.Delay.String())
	}
	if c.Jitter != 0 {
		add("jitter", c.Jitter.String())
	}
	if c.Dist != Uniform {
		add("dist", c.Dist.String())
	}
	if c.KeepOrder {
		add("keeporder", "")
	}
	if c.Reorder != 0 {
		add("reorder", pct(c.Reorder))
	}
	if c.Dup != 0 {
		add("dup", pct(c.Dup))
	}
	if c.Corrupt != 0 {
		add("corrupt", pct(c.Corrupt))
	}
	if c.CorruptOffset != 0 {
		add("corruptoff", strconv.Itoa(c.CorruptOffset))
	}
	if c.Rate != 0 {
		add("rate", FormatRate(c.Rate))
	}
	if c.Queue != 0 {
		add("queue", strconv.Itoa(c.Queue))
	}
	if c.QueueBytes != 0 {
		add("queuebytes", strconv.Itoa(c.QueueBytes))
	}
	if c.AQM.Kind != DropTail {
		add(c.AQM.Kind.String(), "")
	}
	if c.AQM.Target != 0 {
		add("target", c.AQM.Target.String())
	}
	if c.AQM.Interval != 0 {
		add("interval", c.AQM.Interval.String())
	}
	if c.AQM.ECN {
		add("ecn", "")
	}
	if c.MTU != 0 {
		add("mtu", strconv.Itoa(c.MTU))
	}
	if c.LinkHeader != 0 {
		add("hdr", strconv.Itoa(c.LinkHeader))
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// pct formats a probability as a percentage with up to 12 significant
// digits, so that 0.001 prints as "0.1%" rather than "0.10000000000000002%".
func pct(p float64) string {
	return strconv.FormatFloat(p*100, 'g', 12, 64) + "%"
}

// ParseConfig parses the comma-separated form that Config.String writes.
// Keys (all optional, in any order):
//
//	loss=P          independent loss probability
//	ge=p:P/r:P[/h:P][/k:P]
//	                Gilbert–Elliott loss; h (loss in bad state) defaults to
//	                100%, k (1 - loss in good state) to 100%
//	delay=D         one-way delay (a Go duration: 50ms, 1.5s, 200us)
//	jitter=D        jitter (see dist)
//	dist=uniform|normal
//	keeporder       jitter does not reorder (also keeporder=true|false)
//	reorder=P       probability a frame skips the delay
//	dup=P           duplication probability
//	corrupt=P       single-bit-flip probability
//	corruptoff=N    first byte corruption may touch
//	rate=R          bandwidth: 100mbit, 1gbit, 64kbit, 1500000 (bits/s),
//	                or in bytes/s: 10mbps, 1kbps (tc's units)
//	queue=N         bottleneck queue depth in frames
//	queuebytes=N    bottleneck queue limit in bytes (k, m suffixes: ×1024)
//	codel           CoDel AQM on the bottleneck queue (RFC 8289; needs rate)
//	target=D        CoDel's target delay (default 5ms)
//	interval=D      CoDel's interval (default 100ms)
//	ecn             CoDel marks ECN-capable packets CE instead of dropping
//	mtu=N           largest packet, not counting the link header
//	hdr=N           link header length
//
// A probability P is a percentage ("1%", "0.1%") or a fraction ("0.01").
// The empty string and "none" give the zero Config. The result is checked
// with Validate.
func ParseConfig(s string) (Config, error) {
	var c Config
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return c, nil
	}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, hasV := strings.Cut(item, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		var err error
		switch k {
		case "loss":
			c.Loss, err = parseProb(v)
		case "ge", "gemodel":
			c.GE, err = parseGE(v)
		case "delay":
			c.Delay, err = time.ParseDuration(v)
		case "jitter":
			c.Jitter, err = time.ParseDuration(v)
		case "dist", "distribution":
			switch strings.ToLower(v) {
			case "uniform":
				c.Dist = Uniform
			case "normal":
				c.Dist = Normal
			default:
				err = fmt.Errorf("unknown distribution %q", v)
			}
		case "keeporder":
			if !hasV {
				c.KeepOrder = true
			} else {
				c.KeepOrder, err = strconv.ParseBool(v)
			}
		case "reorder":
			c.Reorder, err = parseProb(v)
		case "dup", "duplicate":
			c.Dup, err = parseProb(v)
		case "corrupt":
			c.Corrupt, err = parseProb(v)
		case "corruptoff", "corruptoffset":
			c.CorruptOffset, err = strconv.Atoi(v)
		case "rate":
			c.Rate, err = ParseRate(v)
		case "queue", "limit":
			c.Queue, err = strconv.Atoi(v)
		case "queuebytes":
			c.QueueBytes, err = parseBytes(v)
		case "codel", "droptail":
			if hasV {
				err = errors.New("takes no value")
			} else if k == "codel" {
				c.AQM.Kind = CoDel
			} else {
				c.AQM.Kind = DropTail
			}
		case "target":
			c.AQM.Target, err = time.ParseDuration(v)
		case "interval":
			c.AQM.Interval, err = time.ParseDuration(v)
		case "ecn":
			if !hasV {
				c.AQM.ECN = true
			} else {
				c.AQM.ECN, err = strconv.ParseBool(v)
			}
		case "mtu":
			c.MTU, err = strconv.Atoi(v)
		case "hdr", "linkheader":
			c.LinkHeader, err = strconv.Atoi(v)
		default:
			return Config{}, fmt.Errorf("impair: unknown key %q in %q", k, s)
		}
		if err != nil {
			return Config{}, fmt.Errorf("impair: bad %s %q: %w", k, v, err)
		}
		if !hasV && k != "keeporder" && k != "codel" && k != "droptail" && k != "ecn" {
			return Config{}, fmt.Errorf("impair: %s needs a value", k)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// parseProb reads "1%", "0.5%" or "0.01".
func parseProb(v string) (float64, error) {
	if n, ok := strings.CutSuffix(v, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
		return f / 100, err
	}
	return strconv.ParseFloat(v, 64)
}

func parseGE(v string) (GilbertElliott, error) {
	g := GilbertElliott{LossBad: 1}
	var haveP, haveR bool
	for _, part := range strings.Split(v, "/") {
		k, pv, ok := strings.Cut(part, ":")
		if !ok {
			return g, fmt.Errorf("want name:value, got %q", part)
		}
		p, err := parseProb(strings.TrimSpace(pv))
		if err != nil {
			return g, err
		}
		switch strings.TrimSpace(k) {
		case "p":
			g.P, haveP = p, true
		case "r":
			g.R, haveR = p, true
		case "h":
			g.LossBad = p
		case "k":
			g.LossGood = 1 - p
		default:
			return g, fmt.Errorf("unknown parameter %q (want p, r, h, k)", k)
		}
	}
	if !haveP || !haveR {
		return g, errors.New("p and r are required")
	}
	return g, nil
}

func parseBytes(v string) (int, error) {
	mult := 1
	lv := strings.ToLower(v)
	for _, s := range []struct {
		suffix string
		mult   int
	}{{"kb", 1 << 10}, {"k", 1 << 10}, {"mb", 1 << 20}, {"m", 1 << 20}, {"b", 1}} {
		if n, ok := strings.CutSuffix(lv, s.suffix); ok {
			lv, mult = n, s.mult
			break
		}
	}
	n, err := strconv.Atoi(strings.TrimSpace(lv))
	if err != nil {
		return 0, err
	}
	if n < 0 || n > math.MaxInt/mult {
		return 0, errors.New("out of range")
	}
	return n * mult, nil
}

var rateUnits = []struct {
	suffix string
	mult   float64
}{
	// Longest suffixes first so that "kbit" is not read as "bit".
	{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1},
	{"tbps", 8e12}, {"gbps", 8e9}, {"mbps", 8e6}, {"kbps", 8e3}, {"bps", 8},
}

// ParseRate reads a bandwidth in tc's units: "100mbit", "1gbit", "64kbit",
// "1500bit" or a plain number in bits per second; "mbps", "kbps", "bps"
// etc. are bytes per second, as in tc. Decimal prefixes (k = 1000).
func ParseRate(v string) (uint64, error) {
	lv := strings.ToLower(strings.TrimSpace(v))
	mult := 1.0
	for _, u := range rateUnits {
		if n, ok := strings.CutSuffix(lv, u.suffix); ok {
			lv, mult = n, u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(lv), 64)
	if err != nil {
		return 0, err
	}
	r := f * mult
	if !(r >= 0 && r < math.MaxUint64/2) {
		return 0, errors.New("rate out of range")
	}
	return uint64(math.Round(r)), nil
}

// FormatRate writes a rate in bits per second with the largest of the units
// tbit, gbit, mbit, kbit that divides it exactly, else in bit.
func FormatRate(r uint64) string {
	for _, u := range rateUnits[:4] {
		m := uint64(u.mult)
		if r >= m && r%m == 0 {
			return strconv.FormatUint(r/m, 10) + u.suffix
		}
	}
	return strconv.FormatUint(r, 10) + "bit"
}

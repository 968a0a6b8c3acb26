package impair

import (
	"strings"
	"testing"
	"time"
)

func TestParseConfigExample(t *testing.T) {
	c, err := ParseConfig("loss=1%,delay=50ms,jitter=10ms,reorder=25%,dup=1%,corrupt=0.1%,rate=100mbit,queue=1000,ge=p:0.01/r:0.3/h:0.5")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Loss: 0.01, Delay: 50 * time.Millisecond, Jitter: 10 * time.Millisecond,
		Reorder: 0.25, Dup: 0.01, Corrupt: 0.001, Rate: 100_000_000, Queue: 1000,
		GE: GilbertElliott{P: 0.01, R: 0.3, LossBad: 0.5},
	}
	if c != want {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	const s = "loss=1%,ge=p:1%/r:30%/h:50%/k:100%,delay=50ms,jitter=10ms,reorder=25%,dup=1%,corrupt=0.1%,rate=100mbit,queue=1000"
	if got := c.String(); got != s {
		t.Errorf("String() = %q\nwant       %q", got, s)
	}
}

func TestConfigRoundTrip(t *testing.T) {
	for _, s := range []string{
		"none",
		"loss=0.5%",
		"ge=p:1%/r:25%/h:100%/k:99%",
		"delay=1.5s,jitter=200µs,dist=normal,keeporder",
		"reorder=1%,dup=100%,corrupt=0.01%,corruptoff=54",
		"rate=1500bit,queue=10,queuebytes=65536",
		"rate=64kbit",
		"rate=10gbit,mtu=9000,hdr=14",
	} {
		c, err := ParseConfig(s)
		if err != nil {
			t.Errorf("ParseConfig(%q): %v", s, err)
			continue
		}
		if got := c.String(); got != s {
			t.Errorf("ParseConfig(%q).String() = %q", s, got)
		}
	}
	if s := everything.String(); s != mustParse(t, s).String() {
		t.Errorf("round trip of %q", s)
	}
}

func mustParse(t *testing.T, s string) Config {
	t.Helper()
	c, err := ParseConfig(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseConfigForms(t *testing.T) {
	k := 0.99 // a variable, so that 1-k is computed in float64 as ParseConfig does
	for s, want := range map[string]Config{
		"":                     {},
		" loss = 0.02 , ":      {Loss: 0.02},
		"rate=1mbps":           {Rate: 8_000_000},
		"rate=2.5gbit":         {Rate: 2_500_000_000},
		"rate=1000":            {Rate: 1000},
		"queuebytes=64k":       {QueueBytes: 65536},
		"queuebytes=1mb":       {QueueBytes: 1 << 20},
		"ge=p:0.01/r:0.3":      {GE: GilbertElliott{P: 0.01, R: 0.3, LossBad: 1}},
		"ge=p:1%/r:30%/k:99%":  {GE: GilbertElliott{P: 0.01, R: 0.3, LossBad: 1, LossGood: 1 - k}},
		"keeporder=false":      {},
		"DELAY=10ms,Dup=1%":    {Delay: 10 * time.Millisecond, Dup: 0.01},
		"dist=uniform":         {},
		"limit=5,duplicate=1%": {Queue: 5, Dup: 0.01},
	} {
		got, err := ParseConfig(s)
		if err != nil {
			t.Errorf("ParseConfig(%q): %v", s, err)
		} else if got != want {
			t.Errorf("ParseConfig(%q) = %+v, want %+v", s, got, want)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, s := range []string{
		"loss", "loss=", "loss=150%", "loss=-1%", "loss=NaN", "loss=x",
		"bogus=1", "delay=5", "delay=-5ms", "jitter=-1s", "dist=pareto",
		"rate=fast", "rate=-1mbit", "queue=-1", "queue=x", "mtu=-1",
		"ge=p:0.1", "ge=r:0.1", "ge=p:0.1/r:0.2/z:1", "ge=p0.1", "ge=p:2/r:0.1",
		"keeporder=maybe", "queuebytes=-1k", "corruptoff=-2",
	} {
		if c, err := ParseConfig(s); err == nil {
			t.Errorf("ParseConfig(%q) = %+v, want an error", s, c)
		} else if !strings.HasPrefix(err.Error(), "impair: ") {
			t.Errorf("ParseConfig(%q) error %q lacks the package prefix", s, err)
		}
	}
}

func TestFormatRate(t *testing.T) {
	for r, want := range map[uint64]string{
		0: "0bit", 1: "1bit", 1500: "1500bit", 64000: "64kbit", 100e6: "100mbit",
		1e9: "1gbit", 2.5e9: "2500mbit", 4e12: "4tbit",
	} {
		if got := FormatRate(r); got != want {
			t.Errorf("FormatRate(%d) = %q, want %q", r, got, want)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add("loss=1%,delay=50ms,jitter=10ms,reorder=25%,dup=1%,corrupt=0.1%,rate=100mbit,queue=1000,ge=p:0.01/r:0.3/h:0.5")
	f.Add("keeporder,dist=normal,queuebytes=1k")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConfig(s)
		if err != nil {
			return
		}
		// Whatever parses prints in a form that parses to the same text.
		s2 := c.String()
		c2, err := ParseConfig(s2)
		if err != nil {
			t.Fatalf("ParseConfig(%q) (from %q): %v", s2, s, err)
		}
		if s3 := c2.String(); s3 != s2 {
			t.Fatalf("%q -> %q -> %q", s, s2, s3)
		}
		New(c, 1).Offer(0, 100)
	})
}

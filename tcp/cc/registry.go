package cc

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Factory makes a new, uninitialised controller; the connection calls its
// Init before using it.
type Factory func() Controller

// MaxNameLen is the longest name a controller may be registered under
// (Linux's TCP_CA_NAME_MAX is 16 bytes with the terminating NUL).
const MaxNameLen = 15

// Default is the name of the controller a connection uses when its
// configuration names none: CUBIC, as in Linux.
const Default = "cubic"

// ErrUnknown is returned (wrapped, with the name) by New for a name no
// controller is registered under.
var ErrUnknown = errors.New("unknown congestion control")

var registry = struct {
	sync.RWMutex
	m map[string]Factory
}{m: map[string]Factory{"reno": func() Controller { return &Reno{} }}}

// Register makes the controllers f makes available under name, for
// tcp.Config.Congestion and SetCongestionControl. It is safe to call from
// several goroutines (usually it is called from an init function). It
// fails if name is empty, longer than MaxNameLen, or taken, or f is nil.
func Register(name string, f Factory) error {
	switch {
	case name == "":
		return errors.New("cc: Register: empty name")
	case len(name) > MaxNameLen:
		return fmt.Errorf("cc: Register: name %q longer than %d bytes", name, MaxNameLen)
	case f == nil:
		return fmt.Errorf("cc: Register %q: nil factory", name)
	}
	registry.Lock()
	defer registry.Unlock()
	if _, ok := registry.m[name]; ok {
		return fmt.Errorf("cc: Register: %q is already registered", name)
	}
	registry.m[name] = f
	return nil
}

// New returns a new controller of the algorithm registered under name;
// the empty name means Default. An unknown name is an error wrapping
// ErrUnknown.
func New(name string) (Controller, error) {
	if name == "" {
		name = Default
	}
	registry.RLock()
	f, ok := registry.m[name]
	registry.RUnlock()
	if !ok {
		return nil, fmt.Errorf("cc: %w %q", ErrUnknown, name)
	}
	ctl := f()
	if ctl == nil {
		return nil, fmt.Errorf("cc: the factory of %q returned nil", name)
	}
	return ctl, nil
}

// Registered reports whether a controller is registered under name (the
// empty name stands for Default).
func Registered(name string) bool {
	if name == "" {
		return true
	}
	registry.RLock()
	defer registry.RUnlock()
	_, ok := registry.m[name]
	return ok
}

// Names returns the registered names, sorted (Linux's
// tcp_available_congestion_control).
func Names() []string {
	registry.RLock()
	defer registry.RUnlock()
	names := make([]string, 0, len(registry.m))
	for n := range registry.m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

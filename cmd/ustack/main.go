// Command ustack runs the ustack user-space TCP/IP stack: a demo of two
// stacks in one process, and tools built on the stack.
//
// Usage:
//
//	ustack <command> [flags]
//
// Run "ustack help" for the list of commands and "ustack <command> -h" for
// a command's flags.
package main

import (
	"fmt"
	"os"
	"sort"
)

// command is one subcommand of ustack.
type command struct {
	summary string
	run     func(args []string) int
}

// commands maps subcommand names to their implementations; each lives in
// its own file and registers itself in an init function.
var commands = map[string]command{}

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	name := os.Args[1]
	if name == "help" || name == "-h" || name == "--help" {
		usage(os.Stdout)
		return
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "ustack: unknown command %q\n\n", name)
		usage(os.Stderr)
		os.Exit(2)
	}
	os.Exit(c.run(os.Args[2:]))
}

func usage(w *os.File) {
	fmt.Fprintln(w, "usage: ustack <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
}

// Command styx is the one command-line tool of Styx: party keys, Pads, policies, the node, jobs,
// releases, revocations, audit and the demo.
//
// The logic lives in the library packages; this command parses flags, calls them and formats
// output. Each command group lives in its own file and adds itself to the command table with
// register, so that the table below is the single place where every command is listed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// A command is one leaf of the CLI, such as "pad seal".
type command struct {
	name    string // space-separated path, e.g. "pad seal"
	args    string // usage after the name, e.g. "[-o OUT] [IN]"
	summary string // one line for the command list
	// run executes the command. fs is a fresh flag set named after the command; run defines its
	// flags on it, then calls env.parse(fs, args) to parse them.
	run func(ctx context.Context, env *env, fs *flag.FlagSet, args []string) error
}

// commands is the command table, filled by register from each command group's file.
var commands = map[string]*command{}

func register(cmds ...*command) {
	for _, c := range cmds {
		if _, dup := commands[c.name]; dup {
			panic("styx: command registered twice: " + c.name)
		}
		commands[c.name] = c
	}
}

// env carries the process environment to commands, so tests can run them in-process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// errUsage reports a command line that does not parse; the usage has already been printed.
var errUsage = errors.New("usage")

// parse parses the flags of a command and prints its usage on error. Flags may come before or
// after the positional arguments ("styx release PADID -o FILE"); "--" ends the flags.
func (e *env) parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(e.stderr)
	if err := fs.Parse(permute(fs, args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return errUsage
	}
	return nil
}

var errHelp = errors.New("help requested")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, os.Args[1:])
	stop()
	os.Exit(code)
}

// run dispatches args to the longest matching command and returns the exit status.
func run(ctx context.Context, e *env, args []string) int {
	c, rest := lookup(args)
	if c == nil {
		if len(args) > 0 && args[0] != "help" && args[0] != "-h" && args[0] != "--help" {
			fmt.Fprintf(e.stderr, "styx: unknown command %q\n\n", strings.Join(args, " "))
			usage(e.stderr, args)
			return 2
		}
		usage(e.stdout, nil)
		return 0
	}
	fs := flag.NewFlagSet("styx "+c.name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: styx %s %s\n\n%s\n", c.name, c.args, c.summary)
		if hasFlags(fs) {
			fmt.Fprintln(fs.Output(), "\nflags:")
			fs.PrintDefaults()
		}
	}
	err := c.run(ctx, e, fs, rest)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(e.stderr, "styx %s: %v\n", c.name, err)
		return 1
	}
}

// lookup finds the command whose name is the longest prefix of args.
func lookup(args []string) (*command, []string) {
	for n := min(len(args), 3); n > 0; n-- {
		if c, ok := commands[strings.Join(args[:n], " ")]; ok {
			return c, args[n:]
		}
	}
	return nil, args
}

func hasFlags(fs *flag.FlagSet) bool {
	any := false
	fs.VisitAll(func(*flag.Flag) { any = true })
	return any
}

// usage lists the commands, or those under the group named by prefix.
func usage(w io.Writer, prefix []string) {
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: styx COMMAND [flags] [args]\n\ncommands:")
	group := ""
	if len(prefix) > 0 {
		group = prefix[0] + " "
	}
	for _, name := range names {
		if group != "" && !strings.HasPrefix(name, group) {
			continue
		}
		fmt.Fprintf(w, "  %-22s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(w, "\nRun 'styx COMMAND -h' for the flags of a command.")
}

// permute moves flags (with their values) ahead of positional arguments, so that the standard
// flag package, which stops at the first positional argument, sees them all.
func permute(fs *flag.FlagSet, args []string) []string {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' || a == "-" {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // unknown: Parse reports it
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if len(positional) > 0 && positional[0] != "--" {
		flags = append(flags, "--")
	}
	return append(flags, positional...)
}

// Command ddctl is the command-line front end of the directdl SDK. Each
// subcommand is a little flag parsing around public API calls, so its source
// also shows how to call the SDK. Its flags, exit codes and JSON keys are a
// contract scripts rely on (see the project's CLI documentation):
//
//   - flags come before positional arguments;
//   - -json prints exactly one JSON document on stdout and nothing else;
//   - human output goes to stderr;
//   - exit 0 on success, 1 when the operation failed, 2 on a usage error,
//     and other codes only where a subcommand says so;
//   - errors are one line, "ddctl: <message>", on stderr.
//
// Usage:
//
//	ddctl download [flags] -o DEST URL
//	ddctl download [flags] -batch FILE [-parallel N] -o DIR
//	ddctl qcow2 create [-o OPTIONS] [-b BACKING -F FMT] [-u] FILE [SIZE]
//	ddctl qcow2 info [-json] FILE
//	ddctl qcow2 check [-json] FILE
//	ddctl qcow2 rebase -u -b BACKING -F FMT FILE
//	ddctl qcow2 inspect [-json] [-max-size SIZE] [-allow-backing] FILE
//	ddctl template register -db DSN -name N -url U [-checksum S] [-format F] [-type T]
//	      [-direct] [-detail K=V]... -zone Z [-zone Z]...
//	ddctl template copy -db DSN -id ID -zone Z
//	ddctl template delete -db DSN -id ID [-zone Z] [-force]
//	ddctl template details -db DSN -id ID [-set K=V]... [-remove K]... [-json]
//	ddctl template list -db DSN [-zone Z] [-name S] [-all] [-json]
//	ddctl template show -db DSN -id ID [-json]
//	ddctl probe [-json] [-aia] [-ca-file PEM]... [-allow-cidr CIDR]... [-all-addresses]
//	      [-follow-unverified] [-no-system-roots] [-max-redirects N] [-timeout D] URL
//	ddctl certs fetch [-aia] [-ca-file PEM]... [-allow-cidr CIDR]... -o FILE URL
//	ddctl keystore import -keystore FILE -storepass P -alias A -file PEM [-force] [-json]
//	ddctl keystore list -keystore FILE -storepass P [-alias A] [-json]
//	ddctl keystore delete -keystore FILE -storepass P -alias A [-json]
//	ddctl migrate plan -spec FILE [-db DSN] [-json]
//	ddctl migrate prepare -spec FILE [-db DSN] [-json] [-allow-cidr CIDR]... [-ca-file PEM]...
//	ddctl migrate run -spec FILE -source-qmp SOCKET -dest-qmp SOCKET -nbd ADDR -migrate-uri URI [-no-prepare] [-json]
//
// The migrate commands read a migrate.Spec in JSON from -spec FILE, plus
// where templates are looked up: "templates", a list of {"uuid", "url",
// "checksum", "removed"}, or "repository", a template database DSN (-db
// wins). plan exits 1 when preflight finds errors (the plan is printed
// all the same); a spec that cannot be planned is a usage error (exit 2).
//
// The template commands keep records in the database -db names: a SQLite
// file path (created on first use, shareable by several processes) or a
// postgres:// URL. Zones are numeric ids. template register prints the new
// template's id as the only line on stdout.
package main

import (
	"context"
	"encoding/json"
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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what a subcommand writes to.
type env struct {
	stdout, stderr io.Writer
}

// command is one subcommand: it returns an error, or an *exitError for a
// specific exit code.
type command struct {
	usage string
	run   func(ctx context.Context, e env, args []string) error
}

// exitError ends ddctl with a given code after printing msg (if any).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// usageErr is a usage error: exit code 2.
func usageErr(format string, args ...any) error {
	return &exitError{code: 2, msg: fmt.Sprintf(format, args...)}
}

// groups are the commands with subcommands, such as qcow2 create.
var groups = map[string]map[string]command{
	"qcow2":    qcow2Commands,
	"template": templateCommands,
	"certs":    certsCommands,
	"keystore": keystoreCommands,
	"migrate":  migrateCommands,
}

// singles are the commands without subcommands, such as download.
var singles = map[string]command{
	"download": {downloadUsage, downloadCmd},
	"probe":    {probeUsage, probeCmd},
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := env{stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "-help" {
		printUsage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if c, ok := singles[args[0]]; ok {
		return finish(stderr, args[0], c, c.run(ctx, e, args[1:]))
	}
	cmds, ok := groups[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "ddctl: unknown command %q (run ddctl help)\n", args[0])
		return 2
	}
	if len(args) < 2 || args[1] == "help" {
		printGroup(stderr, args[0], cmds)
		if len(args) < 2 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[1]]
	if !ok {
		fmt.Fprintf(stderr, "ddctl: unknown command %q (run ddctl %s help)\n", args[0]+" "+args[1], args[0])
		return 2
	}
	return finish(stderr, args[0]+" "+args[1], c, c.run(ctx, e, args[2:]))
}

// helpRequest is -h or -help: finish prints the command's usage and its
// flags, and ddctl exits 0.
type helpRequest struct{ fs *flag.FlagSet }

func (*helpRequest) Error() string { return "help requested" }

// finish prints the error err of command c (named as typed, such as
// "qcow2 create") and returns ddctl's exit code for it.
func finish(stderr io.Writer, name string, c command, err error) int {
	if err == nil {
		return 0
	}
	var help *helpRequest
	if errors.As(err, &help) {
		fmt.Fprintf(stderr, "usage: ddctl %s %s\n\nflags:\n", name, c.usage)
		help.fs.SetOutput(stderr)
		help.fs.PrintDefaults()
		return 0
	}
	var x *exitError
	if errors.As(err, &x) {
		msg := x.msg
		if x.code == 2 {
			usage := fmt.Sprintf("usage: ddctl %s %s", name, c.usage)
			if msg == "" {
				msg = usage
			} else {
				msg += " (" + usage + ")"
			}
		}
		if msg != "" {
			fmt.Fprintf(stderr, "ddctl: %s\n", oneLine(msg))
		}
		return x.code
	}
	fmt.Fprintf(stderr, "ddctl: %s\n", oneLine(err.Error()))
	return 1
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: ddctl COMMAND [SUBCOMMAND] [flags] [args]")
	fmt.Fprintln(w)
	singleNames := make([]string, 0, len(singles))
	for n := range singles {
		singleNames = append(singleNames, n)
	}
	sort.Strings(singleNames)
	for _, n := range singleNames {
		fmt.Fprintf(w, "  ddctl %s %s\n", n, singles[n].usage)
	}
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		printGroup(w, n, groups[n])
	}
}

func printGroup(w io.Writer, group string, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  ddctl %s %s %s\n", group, n, cmds[n].usage)
	}
}

// newFlags returns a FlagSet that reports errors as usage errors and prints
// nothing itself.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &helpRequest{fs}
		}
		return usageErr("%v", err)
	}
	return nil
}

// writeJSON prints v as the one JSON document on stdout.
func writeJSON(e env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "    ")
	return enc.Encode(v)
}

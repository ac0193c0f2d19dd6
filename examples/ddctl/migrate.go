package main

// ddctl migrate: plan and prepare the destination storage of a KVM live
// migration with non-shared disks (package migrate).
//
// The spec FILE is a migrate.Spec in JSON, plus where templates are looked
// up: "templates", a list of {"uuid", "url", "checksum", "removed"}, or
// "repository", the DSN of a template database (what -db takes; -db wins).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/directdl/directdl/migrate"
	"github.com/directdl/directdl/migrate/qemu"
	"github.com/directdl/directdl/template"
	"github.com/directdl/directdl/template/sqlrepo"
)

var migrateCommands = map[string]command{
	"plan":    {"-spec FILE [-db DSN] [-json]", migratePlan},
	"prepare": {"-spec FILE [-db DSN] [-json] [-allow-cidr CIDR]... [-deny-cidr CIDR]... [-only-allowed] [-ca-file PEM]... [-truststore FILE -storepass P]", migratePrepare},
	"run":     {migrateRunUsage, migrateRun},
}

// specFile is the JSON of -spec FILE.
type specFile struct {
	migrate.Spec
	Templates  migrate.Templates `json:"templates,omitempty"`
	Repository string            `json:"repository,omitempty"`
}

// migrateFlags are the flags plan, prepare and run share.
type migrateFlags struct {
	spec, dsn string
	json      bool
}

func (f *migrateFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.spec, "spec", "", "migration spec `FILE` (JSON): the VM's disks, the destination and where templates are looked up")
	fs.StringVar(&f.dsn, "db", "", "`DSN` of the template database to look templates up in (instead of the spec's)")
	fs.BoolVar(&f.json, "json", false, "print the result as JSON on stdout")
}

// check finds the usage errors of the shared flags.
func (f *migrateFlags) check(fs *flag.FlagSet) error {
	if f.spec == "" {
		return usageErr("-spec FILE required")
	}
	if fs.NArg() != 0 {
		return usageErr("unexpected argument %q: everything comes from -spec FILE", fs.Arg(0))
	}
	return nil
}

// readSpec reads and decodes -spec FILE, refusing unknown keys so that a
// typo ("destinaton") is not silently a missing field.
func readSpec(path string) (*specFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErr("-spec: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s specFile
	if err := dec.Decode(&s); err != nil {
		return nil, usageErr("-spec %s: %v", path, err)
	}
	if dec.More() {
		return nil, usageErr("-spec %s: more than one JSON value", path)
	}
	if len(s.Templates) > 0 && s.Repository != "" {
		return nil, usageErr("-spec %s: give \"templates\" or \"repository\", not both", path)
	}
	return &s, nil
}

// plan reads the spec and plans it, with the template lookup it names.
func (f *migrateFlags) plan(ctx context.Context) (*migrate.Plan, error) {
	_, p, err := f.load(ctx)
	return p, err
}

// load reads the spec and plans it, and returns both.
func (f *migrateFlags) load(ctx context.Context) (*specFile, *migrate.Plan, error) {
	s, err := readSpec(f.spec)
	if err != nil {
		return nil, nil, err
	}
	dsn := f.dsn
	if dsn == "" {
		dsn = s.Repository
	}
	var p *migrate.Plan
	if dsn == "" {
		p, err = migrate.NewPlan(ctx, s.Spec, s.Templates)
	} else {
		err = withRepo(ctx, dsn, func(r template.Repository) error {
			var err error
			p, err = migrate.NewPlan(ctx, s.Spec, r)
			return err
		})
	}
	if errors.Is(err, migrate.ErrSpec) {
		return nil, nil, &exitError{code: 2, msg: err.Error()}
	}
	return s, p, err
}

var _ migrate.TemplateLookup = (*sqlrepo.Repo)(nil)

// migratePlan is ddctl migrate plan.
func migratePlan(ctx context.Context, e env, args []string) error {
	fs := newFlags("plan")
	var f migrateFlags
	f.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.check(fs); err != nil {
		return err
	}
	p, err := f.plan(ctx)
	if err != nil {
		return err
	}
	if f.json {
		if err := writeJSON(e, p); err != nil {
			return err
		}
	} else {
		printPlan(e, p)
	}
	// Exit code 1 for a plan whose preflight failed, its problems printed.
	return p.Err()
}

// printPlan writes the plan for a person, on stderr.
func printPlan(e env, p *migrate.Plan) {
	w := e.stderr
	for _, d := range p.Disks {
		fmt.Fprintf(w, "%s: %s %s -> %s (%s, %d bytes", d.Label, d.Strategy, d.Source, d.Destination, d.DestinationFormat, d.VirtualSize)
		if d.Backing != "" {
			fmt.Fprintf(w, ", backing %s", d.Backing)
		}
		fmt.Fprintf(w, ")\n  %s\n", d.Reason)
	}
	for _, f := range p.Fetches {
		fmt.Fprintf(w, "fetch template %s to %s\n", f.Template, f.Path)
	}
	fmt.Fprintf(w, "mode: %s: %s\n", p.Mode, p.ModeReason)
	fmt.Fprintf(w, "libvirt flags: %s (%d)\n", strings.Join(p.LibvirtFlags, "|"), p.LibvirtFlagBits)
	fmt.Fprintf(w, "virsh: %s\n", p.Virsh)
	fmt.Fprintf(w, "copies about %d bytes; needs about %d bytes on the destination\n", p.CopyBytes, p.NeedBytes)
	for _, pr := range p.Problems {
		fmt.Fprintf(w, "%s\n", pr)
	}
}

// migratePrepare is ddctl migrate prepare.
func migratePrepare(ctx context.Context, e env, args []string) error {
	fs := newFlags("prepare")
	var f migrateFlags
	f.register(fs)
	df := defaultDownloadFlags()
	fs.Var(&df.caFiles, "ca-file", "`PEM` file of CA certificates to trust besides the system's, for fetching templates (repeatable)")
	fs.StringVar(&df.truststore, "truststore", "", "JKS or PKCS12 trust store `FILE` of CA certificates to trust besides the system's")
	fs.StringVar(&df.storepass, "storepass", "", "`password` of -truststore")
	fs.Var(&df.allow, "allow-cidr", "`CIDR` (or IP) a template URL may reach even if special, such as 127.0.0.0/8 (repeatable)")
	fs.Var(&df.deny, "deny-cidr", "`CIDR` (or IP) a template URL may not reach (repeatable)")
	fs.BoolVar(&df.onlyAllowed, "only-allowed", false, "refuse every address outside the -allow-cidr prefixes")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.check(fs); err != nil {
		return err
	}
	if (df.truststore == "") != (df.storepass == "") {
		return usageErr("-truststore and -storepass go together")
	}
	if df.onlyAllowed && len(df.allow) == 0 {
		return usageErr("-only-allowed needs at least one -allow-cidr")
	}
	pool, err := trustPool(df.caFiles, df.truststore, df.storepass)
	if err != nil {
		return err
	}
	c, err := newDownloadClient(df, pool, nil)
	if err != nil {
		return usageErr("%v", err)
	}
	defer c.CloseIdleConnections()
	p, err := f.plan(ctx)
	if err != nil {
		return err
	}
	if err := p.Err(); err != nil {
		if f.json {
			if jerr := writeJSON(e, struct {
				Plan *migrate.Plan `json:"plan"`
			}{p}); jerr != nil {
				return jerr
			}
		} else {
			printPlan(e, p)
		}
		return err
	}
	done, err := migrate.Prepare(ctx, p, c)
	if err != nil {
		return err
	}
	if f.json {
		return writeJSON(e, struct {
			Plan     *migrate.Plan     `json:"plan"`
			Prepared *migrate.Prepared `json:"prepared"`
		}{p, done})
	}
	printPlan(e, p)
	for _, path := range done.Created {
		fmt.Fprintf(e.stderr, "created %s\n", path)
	}
	for _, path := range done.Kept {
		fmt.Fprintf(e.stderr, "kept %s (already prepared)\n", path)
	}
	return nil
}

const migrateRunUsage = "-spec FILE [-db DSN] -source-qmp SOCKET -dest-qmp SOCKET -nbd HOST:PORT|unix:PATH -migrate-uri tcp:HOST:PORT|unix:PATH [-copy-mode write-blocking|background] [-no-prepare] [-json]"

// migrateRun is ddctl migrate run: plan, prepare the destination's disks
// (when the spec says the destination's storage is local), and migrate
// the running source QEMU to the destination QEMU, started with
// -incoming defer and the prepared disks, over their QMP sockets.
func migrateRun(ctx context.Context, e env, args []string) error {
	fs := newFlags("run")
	var f migrateFlags
	f.register(fs)
	srcQMP := fs.String("source-qmp", "", "QMP unix `SOCKET` of the running source QEMU")
	dstQMP := fs.String("dest-qmp", "", "QMP unix `SOCKET` of the destination QEMU (started with -incoming defer)")
	nbd := fs.String("nbd", "", "`ADDRESS` where the destination serves its disks over NBD: HOST:PORT or unix:PATH")
	uri := fs.String("migrate-uri", "", "`URI` where the destination takes the VM state: tcp:HOST:PORT or unix:PATH")
	copyMode := fs.String("copy-mode", "", "mirror copy mode: write-blocking (default) or background")
	noPrepare := fs.Bool("no-prepare", false, "the destination's disks are prepared already: do not prepare them")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.check(fs); err != nil {
		return err
	}
	for _, req := range []struct{ name, v string }{{"source-qmp", *srcQMP}, {"dest-qmp", *dstQMP}, {"nbd", *nbd}, {"migrate-uri", *uri}} {
		if req.v == "" {
			return usageErr("-%s required", req.name)
		}
	}
	s, p, err := f.load(ctx)
	if err != nil {
		return err
	}
	if err := p.Err(); err != nil {
		printPlan(e, p)
		return err
	}
	var done *migrate.Prepared
	if !*noPrepare {
		if !s.Destination.Local {
			return usageErr("the spec's destination is not local, so its disks cannot be prepared here: prepare them with ddctl migrate prepare on the destination, then give -no-prepare")
		}
		c, err := newDownloadClient(defaultDownloadFlags(), nil, nil)
		if err != nil {
			return err
		}
		defer c.CloseIdleConnections()
		if done, err = migrate.Prepare(ctx, p, c); err != nil {
			return err
		}
	}
	src, err := qemu.Dial(ctx, *srcQMP, "source")
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := qemu.Dial(ctx, *dstQMP, "destination")
	if err != nil {
		return err
	}
	defer dst.Close()
	rep, err := qemu.Run(ctx, qemu.Migration{Plan: p, Source: src, Destination: dst, NBDAddress: *nbd, MigrateURI: *uri, CopyMode: *copyMode})
	if err != nil {
		return err
	}
	if f.json {
		return writeJSON(e, struct {
			Plan     *migrate.Plan     `json:"plan"`
			Prepared *migrate.Prepared `json:"prepared,omitempty"`
			Report   *qemu.Report      `json:"report"`
		}{p, done, rep})
	}
	printPlan(e, p)
	for _, d := range rep.Disks {
		fmt.Fprintf(e.stderr, "%s: copied %d bytes (sync %s)\n", d.Label, d.Bytes, d.Sync)
	}
	fmt.Fprintf(e.stderr, "migrated in %s (mirror %s, migration %s, completion %s); RAM %d bytes; destination running: %v\n",
		rep.Duration.Round(time.Millisecond), rep.Mirror.Round(time.Millisecond), rep.Migration.Round(time.Millisecond), rep.Completion.Round(time.Millisecond), rep.RAMBytes, rep.DestinationRunning)
	return nil
}

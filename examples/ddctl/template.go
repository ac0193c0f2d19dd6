package main

// ddctl template: template records kept in SQLite or PostgreSQL through
// template/sqlrepo.
//
// Every subcommand takes -db DSN: the path of a SQLite file, created on
// first use (its directory must exist), or a postgres:// (postgresql://)
// URL. Several ddctl processes may use one SQLite file at once; each call
// is one transaction.
//
// Zones are numeric ids (positive integers) in this version: the template
// repository keeps zone ids only and has no table of zone names, so a -zone
// that is not a number is a usage error rather than a name ddctl would
// have to invent a mapping for.
//
// Output follows ddctl's rules: register prints the new template's id as
// the only line on stdout; -json prints one JSON document on stdout and
// nothing else; everything else, such as the tables of list and the
// K=V lines of details, is human output on stderr. Exit codes: 0 on
// success, 1 when the operation failed (an unknown template, a zone that
// does not offer it, a template in use, a database error), 2 on a usage
// error.
//
// # JSON
//
// The keys below are a contract; new keys may be added, none renamed or
// removed. show -json prints one template object with store_refs; list
// -json prints an array of template objects without store_refs (it is
// always an array, [] when nothing matches); details -json prints the
// details object alone, such as {"UEFI": "secure"}.
//
// A template object:
//
//	id               number  the template's id
//	uuid             string
//	name             string
//	display_text     string
//	format           string  QCOW2, RAW, VHD, ...
//	type             string  USER, SYSTEM, ROUTING, ...
//	hypervisor       string  such as KVM; "" when not given
//	url              string
//	checksum         string  as registered: {SHA-256}HEX, sha256:HEX, ...
//	direct_download  bool
//	size             number  virtual size in bytes, 0 when unknown
//	physical_size    number  bytes of the image file, 0 when unknown
//	owner            string
//	created          string  RFC 3339 time, UTC, with fractional seconds
//	removed          string  RFC 3339 time the template was deleted, or null
//	details          object  string to string, {} when none (always {} once removed)
//	zones            array   zone ids offering the template, ascending ([] once removed)
//	store_refs       array   show only: the template's copies, as below
//
// A store ref (an element of store_refs):
//
//	store         number  image store or primary pool id
//	zone          number  zone id
//	kind          string  "image" (image store) or "primary" (primary pool)
//	state         string  NOT_DOWNLOADED, DOWNLOAD_IN_PROGRESS, DOWNLOADED,
//	                      DOWNLOAD_ERROR, ABANDONED or BYPASSED
//	progress      number  percent, 0 to 100
//	error         string  "" unless the download failed
//	install_path  string
//	size          number  bytes, 0 when unknown
//	physical_size number  bytes, 0 when unknown
//	version       number  counts the ref's updates
//	updated       string  RFC 3339 time of the last update, UTC

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/template"
	"github.com/directdl/directdl/template/sqlrepo"
)

var templateCommands = map[string]command{
	"register": {"-db DSN -name N -url U [-checksum S] [-format QCOW2] [-type USER] [-direct] [-detail K=V]... [-display-text T] [-hypervisor H] [-owner O] [-uuid U] -zone Z [-zone Z]...", templateRegister},
	"copy":     {"-db DSN -id ID -zone Z", templateCopy},
	"delete":   {"-db DSN -id ID [-zone Z] [-force]", templateDelete},
	"details":  {"-db DSN -id ID [-set K=V]... [-remove K]... [-json]", templateDetails},
	"list":     {"-db DSN [-zone Z] [-name S] [-all] [-json]", templateList},
	"show":     {"-db DSN -id ID [-json]", templateShow},
}

// dbFlag adds -db to fs.
func dbFlag(fs interface {
	StringVar(p *string, name, value, usage string)
}) *string {
	var dsn string
	fs.StringVar(&dsn, "db", "", "`DSN` of the template database: a SQLite file path (created on first use) or a postgres:// URL")
	return &dsn
}

// checkCommon reports the usage errors every template subcommand shares:
// no -db, and positional arguments.
func checkCommon(dsn string, args []string) error {
	if strings.TrimSpace(dsn) == "" {
		return usageErr("-db DSN required: a SQLite file path (created on first use) or a postgres:// URL")
	}
	if len(args) > 0 {
		return usageErr("unexpected argument %q: template subcommands take flags only, such as -id 5", args[0])
	}
	return nil
}

// withRepo opens the repository named by dsn, runs fn on it and closes it.
// Errors of the repository get a hint of what to do (see repoError).
func withRepo(ctx context.Context, dsn string, fn func(r template.Repository) error) (err error) {
	r, err := sqlrepo.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := r.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	return repoError(fn(r), dsn)
}

// repoError adds to err, an error of the repository, how to find what it
// names.
func repoError(err error, dsn string) error {
	var inUse *template.InUseError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &inUse):
		return fmt.Errorf("%w (ddctl template delete -force deletes anyway)", err)
	case errors.Is(err, template.ErrNotFound):
		return fmt.Errorf("%w (ddctl template list -db %s -all lists the templates and their zones)", err, quoteArg(dsn))
	}
	return err
}

// quoteArg returns s as it could be typed in a shell command line, for
// hints; a PostgreSQL URL loses its password.
func quoteArg(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		s = u.Redacted()
	}
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@+=,%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// idFlag is the -id flag: a template id, a positive integer.
type idFlag struct {
	id  template.ID
	set bool
}

func (f *idFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return strconv.FormatInt(int64(f.id), 10)
}

func (f *idFlag) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return fmt.Errorf("template ids are positive integers, such as 5 (ddctl template list shows them)")
	}
	f.id, f.set = template.ID(n), true
	return nil
}

// parseZone reads a zone given on the command line. Zones are numeric ids
// in this version: the repository keeps no zone names.
func parseZone(s string) (template.ZoneID, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	var ne *strconv.NumError
	switch {
	case errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange):
		return 0, fmt.Errorf("zone %s is out of range", s)
	case err != nil:
		return 0, fmt.Errorf("zone %q: zones are numeric ids in this version (a positive integer such as 1); zone names are not supported", s)
	case n < 1:
		return 0, fmt.Errorf("zone %d: zone ids start at 1", n)
	}
	return template.ZoneID(n), nil
}

// zonesFlag is a repeatable -zone flag.
type zonesFlag []template.ZoneID

func (f *zonesFlag) String() string {
	if f == nil {
		return ""
	}
	return joinZones(*f)
}

func (f *zonesFlag) Set(s string) error {
	z, err := parseZone(s)
	if err != nil {
		return err
	}
	*f = append(*f, z)
	return nil
}

// zoneFlag is a -zone flag given at most once.
type zoneFlag struct {
	zone template.ZoneID
	set  bool
}

func (f *zoneFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return strconv.FormatInt(int64(f.zone), 10)
}

func (f *zoneFlag) Set(s string) error {
	if f.set {
		return errors.New("-zone given twice: this command takes one zone")
	}
	z, err := parseZone(s)
	if err != nil {
		return err
	}
	f.zone, f.set = z, true
	return nil
}

func joinZones(zs []template.ZoneID) string {
	s := make([]string, len(zs))
	for i, z := range zs {
		s[i] = strconv.FormatInt(int64(z), 10)
	}
	return strings.Join(s, ",")
}

// detailsFlag is a repeatable K=V flag (-detail, -set). A key given twice
// is an error rather than a silent overwrite.
type detailsFlag map[string]string

func (f detailsFlag) String() string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		keys[i] = k + "=" + f[k]
	}
	return strings.Join(keys, ",")
}

func (f detailsFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("%q is not KEY=VALUE, such as UEFI=secure", s)
	}
	if err := template.ValidDetailKey(k); err != nil {
		return fmt.Errorf("%q: detail keys are 1 to 255 bytes", s)
	}
	if _, dup := f[k]; dup {
		return fmt.Errorf("detail %q given twice", k)
	}
	f[k] = v
	return nil
}

// keysFlag is a repeatable flag of detail keys (-remove).
type keysFlag []string

func (f *keysFlag) String() string {
	if f == nil {
		return ""
	}
	return strings.Join(*f, ",")
}

func (f *keysFlag) Set(s string) error {
	if err := template.ValidDetailKey(s); err != nil {
		return fmt.Errorf("%q: detail keys are 1 to 255 bytes", s)
	}
	if slices.Contains(*f, s) {
		return fmt.Errorf("detail %q given twice", s)
	}
	*f = append(*f, s)
	return nil
}

// templateRegister is ddctl template register: it records a template in
// one or more zones and prints its id on stdout.
func templateRegister(ctx context.Context, e env, args []string) error {
	fs := newFlags("register")
	dsn := dbFlag(fs)
	var n template.NewTemplate
	fs.StringVar(&n.Name, "name", "", "template `name` (required)")
	fs.StringVar(&n.URL, "url", "", "`URL` the image is downloaded from (required)")
	fs.StringVar(&n.Checksum, "checksum", "", "image `checksum`: {SHA-256}HEX, sha256:HEX, bare HEX (MD5), ...")
	format := fs.String("format", string(template.QCOW2), "disk image `format`: QCOW2, RAW, VHD, VHDX, ISO, OVA, VMDK, ...")
	typ := fs.String("type", string(template.User), "template `type`: USER, SYSTEM, ROUTING, BUILTIN, PERHOST, VNF, ...")
	fs.BoolVar(&n.DirectDownload, "direct", false, "direct download: hosts fetch the image into primary storage, no image store holds it")
	details := detailsFlag{}
	fs.Var(details, "detail", "template detail `K=V`, such as UEFI=secure (repeatable)")
	fs.StringVar(&n.DisplayText, "display-text", "", "description shown to users (default: the name)")
	fs.StringVar(&n.Hypervisor, "hypervisor", "", "`hypervisor` the template is for, such as KVM")
	fs.StringVar(&n.Owner, "owner", "", "`owner` of the template, such as an account name")
	fs.StringVar(&n.UUID, "uuid", "", "`UUID` to give the template (default: a random one)")
	var zones zonesFlag
	fs.Var(&zones, "zone", "numeric `id` of a zone that offers the template (required, repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkCommon(*dsn, fs.Args()); err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(n.Name) == "":
		return usageErr("-name N required: the template's name")
	case n.URL == "":
		return usageErr("-url U required: where the image is downloaded from")
	case len(zones) == 0:
		return usageErr("-zone Z required: the numeric id of a zone to offer the template in (repeatable)")
	}
	if u, err := url.Parse(n.URL); err != nil || u.Scheme == "" || u.Host == "" {
		return usageErr("-url %q: want an absolute URL such as https://mirror.example/t.qcow2", n.URL)
	}
	if _, err := download.ParseChecksum(n.Checksum); err != nil {
		return usageErr("-checksum: %v", err)
	}
	n.Format, n.Type = template.Format(*format), template.Type(*typ)
	if len(details) > 0 {
		n.Details = details
	}
	if n.DisplayText == "" {
		n.DisplayText = n.Name
	}
	if err := n.Validate(); err != nil {
		return usageErr("%s", flagHint(err, *format, *typ))
	}
	return withRepo(ctx, *dsn, func(r template.Repository) error {
		t, err := r.Register(ctx, n, zones...)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, t.ID)
		fmt.Fprintf(e.stderr, "registered template %d (%s, uuid %s) in zone(s) %s\n", t.ID, printable(t.Name), t.UUID, joinZones(t.Zones))
		return nil
	})
}

// flagHint turns a validation error of NewTemplate into one that names
// the flag and the values it takes.
func flagHint(err error, format, typ string) string {
	if _, ferr := template.ParseFormat(format); ferr != nil {
		return fmt.Sprintf("-format %q: want one of QCOW2, RAW, VHD, VHDX, ISO, OVA, VMDK, VDI, TAR, ZIP, DIR, BAREMETAL, EXTERNAL", format)
	}
	if _, terr := template.ParseType(typ); terr != nil {
		return fmt.Sprintf("-type %q: want one of USER, SYSTEM, ROUTING, BUILTIN, PERHOST, VNF, DATADISK, ISODISK", typ)
	}
	return err.Error()
}

// templateCopy is ddctl template copy: it offers a template in one more
// zone. A zone that already offers it is not an error.
func templateCopy(ctx context.Context, e env, args []string) error {
	fs := newFlags("copy")
	dsn := dbFlag(fs)
	var id idFlag
	var zone zoneFlag
	fs.Var(&id, "id", "template `id` (required)")
	fs.Var(&zone, "zone", "numeric `id` of the zone to offer the template in (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkCommon(*dsn, fs.Args()); err != nil {
		return err
	}
	if !id.set {
		return usageErr("-id ID required: the template's id")
	}
	if !zone.set {
		return usageErr("-zone Z required: the numeric id of the zone to copy the template to")
	}
	return withRepo(ctx, *dsn, func(r template.Repository) error {
		if err := r.CopyToZone(ctx, id.id, zone.zone); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "template %d is offered in zone %d\n", id.id, zone.zone)
		return nil
	})
}

// templateDelete is ddctl template delete: from one zone with -zone, else
// from every zone. Volumes using the template make it fail unless -force.
func templateDelete(ctx context.Context, e env, args []string) error {
	fs := newFlags("delete")
	dsn := dbFlag(fs)
	var id idFlag
	var zone zoneFlag
	fs.Var(&id, "id", "template `id` (required)")
	fs.Var(&zone, "zone", "numeric `id` of the zone to delete the template from (default: every zone)")
	force := fs.Bool("force", false, "delete even when volumes use the template")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkCommon(*dsn, fs.Args()); err != nil {
		return err
	}
	if !id.set {
		return usageErr("-id ID required: the template's id")
	}
	o := template.DeleteOptions{Force: *force}
	return withRepo(ctx, *dsn, func(r template.Repository) error {
		if !zone.set {
			if err := r.DeleteEverywhere(ctx, id.id, o); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "template %d deleted from every zone, with its details\n", id.id)
			return nil
		}
		res, err := r.DeleteFromZone(ctx, id.id, zone.zone, o)
		if err != nil {
			return err
		}
		if res.Removed {
			fmt.Fprintf(e.stderr, "template %d deleted from zone %d, its last zone: the template and its details are removed\n", id.id, zone.zone)
		} else {
			fmt.Fprintf(e.stderr, "template %d deleted from zone %d only: other zones still offer it, with its details\n", id.id, zone.zone)
		}
		return nil
	})
}

// templateDetails is ddctl template details: it sets (-set) and removes
// (-remove) details, then prints them all. The changes are one transaction
// for the -set keys and one per -remove key; a -remove key the template
// lacks fails the command before anything changes.
func templateDetails(ctx context.Context, e env, args []string) error {
	fs := newFlags("details")
	dsn := dbFlag(fs)
	var id idFlag
	fs.Var(&id, "id", "template `id` (required)")
	set := detailsFlag{}
	fs.Var(set, "set", "add or replace detail `K=V` (repeatable)")
	var remove keysFlag
	fs.Var(&remove, "remove", "remove detail `K` (repeatable)")
	asJSON := fs.Bool("json", false, "print the details as one JSON object on stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkCommon(*dsn, fs.Args()); err != nil {
		return err
	}
	if !id.set {
		return usageErr("-id ID required: the template's id")
	}
	for _, k := range remove {
		if _, ok := set[k]; ok {
			return usageErr("detail %q is both set and removed: give one of -set and -remove", k)
		}
	}
	return withRepo(ctx, *dsn, func(r template.Repository) error {
		d, err := r.Details(ctx, id.id)
		if err != nil {
			return err
		}
		for _, k := range remove {
			if _, ok := d[k]; !ok {
				return fmt.Errorf("template %d has no detail %q; nothing changed", id.id, k)
			}
		}
		if len(set) > 0 {
			if err := r.SetDetails(ctx, id.id, set); err != nil {
				return err
			}
		}
		for _, k := range remove {
			if err := r.RemoveDetail(ctx, id.id, k); err != nil {
				return err
			}
		}
		if len(set) > 0 || len(remove) > 0 {
			if d, err = r.Details(ctx, id.id); err != nil {
				return err
			}
		}
		if d == nil {
			d = map[string]string{}
		}
		if *asJSON {
			return writeJSON(e, d)
		}
		keys := make([]string, 0, len(d))
		for k := range d {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(e.stderr, "%s=%s\n", printable(k), printable(d[k]))
		}
		if len(keys) == 0 {
			fmt.Fprintf(e.stderr, "template %d has no details\n", id.id)
		}
		return nil
	})
}

// templateList is ddctl template list: every matching template, read page
// by page.
func templateList(ctx context.Context, e env, args []string) error {
	fs := newFlags("list")
	dsn := dbFlag(fs)
	var zone zoneFlag
	fs.Var(&zone, "zone", "list only the templates the zone with this numeric `id` offers")
	name := fs.String("name", "", "list only the templates whose name contains `S` (any case)")
	all := fs.Bool("all", false, "list deleted templates too")
	asJSON := fs.Bool("json", false, "print an array of template objects on stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkCommon(*dsn, fs.Args()); err != nil {
		return err
	}
	return withRepo(ctx, *dsn, func(r template.Repository) error {
		o := template.ListOptions{Zone: zone.zone, Name: *name, IncludeRemoved: *all, Limit: template.MaxLimit}
		var ts []template.Template
		for {
			p, err := r.List(ctx, o)
			if err != nil {
				return err
			}
			ts = append(ts, p.Templates...)
			if p.Next == 0 {
				break
			}
			if p.Next <= o.After {
				return fmt.Errorf("template list did not advance past id %d: the repository's paging is broken", o.After)
			}
			o.After = p.Next
		}
		if *asJSON {
			out := make([]templateJSON, len(ts))
			for i, t := range ts {
				out[i] = toJSON(t)
			}
			return writeJSON(e, out)
		}
		if len(ts) == 0 {
			fmt.Fprintln(e.stderr, "no templates")
			return nil
		}
		tw := tabwriter.NewWriter(e.stderr, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tFORMAT\tTYPE\tDIRECT\tZONES\tREMOVED")
		for _, t := range ts {
			removed := "-"
			if !t.Removed.IsZero() {
				removed = t.Removed.Format(time.RFC3339)
			}
			zones := joinZones(t.Zones)
			if zones == "" {
				zones = "-"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%v\t%s\t%s\n", t.ID, printable(t.Name), t.Format, t.Type, t.DirectDownload, zones, removed)
		}
		return tw.Flush()
	})
}

// templateShow is ddctl template show: one template, deleted or not, with
// its store refs.
func templateShow(ctx context.Context, e env, args []string) error {
	fs := newFlags("show")
	dsn := dbFlag(fs)
	var id idFlag
	fs.Var(&id, "id", "template `id` (required)")
	asJSON := fs.Bool("json", false, "print the template as one JSON object on stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkCommon(*dsn, fs.Args()); err != nil {
		return err
	}
	if !id.set {
		return usageErr("-id ID required: the template's id")
	}
	return withRepo(ctx, *dsn, func(r template.Repository) error {
		t, refs, err := readTemplate(ctx, r, id.id)
		if err != nil {
			return err
		}
		out := showJSON{templateJSON: toJSON(t), StoreRefs: make([]storeRefJSON, len(refs))}
		for i, ref := range refs {
			out.StoreRefs[i] = storeRefJSON{
				Store:        int64(ref.Store),
				Zone:         int64(ref.Zone),
				Kind:         string(ref.Kind),
				State:        string(ref.State),
				Progress:     ref.Progress,
				Error:        ref.Error,
				InstallPath:  ref.InstallPath,
				Size:         ref.Size,
				PhysicalSize: ref.PhysicalSize,
				Version:      ref.Version,
				Updated:      rfc3339(ref.Updated),
			}
		}
		if *asJSON {
			return writeJSON(e, out)
		}
		printTemplate(e, out)
		return nil
	})
}

// readTemplate returns template id, removed or not, and its store refs
// (none once removed).
func readTemplate(ctx context.Context, r template.Repository, id template.ID) (template.Template, []template.StoreRef, error) {
	for range 2 {
		t, err := r.Get(ctx, id, template.IncludeRemoved())
		if err != nil || !t.Removed.IsZero() {
			return t, nil, err
		}
		refs, err := r.StoreRefs(ctx, id)
		if errors.Is(err, template.ErrNotFound) {
			continue // removed meanwhile: read it again
		}
		return t, refs, err
	}
	return template.Template{}, nil, fmt.Errorf("template %d changed while it was read; try again", id)
}

func printTemplate(e env, t showJSON) {
	w := e.stderr
	fmt.Fprintf(w, "id: %d\nuuid: %s\nname: %s\n", t.ID, printable(t.UUID), printable(t.Name))
	fmt.Fprintf(w, "display text: %s\nformat: %s\ntype: %s\n", printable(t.DisplayText), t.Format, t.Type)
	fmt.Fprintf(w, "hypervisor: %s\nurl: %s\nchecksum: %s\n", printable(t.Hypervisor), printable(t.URL), printable(t.Checksum))
	fmt.Fprintf(w, "direct download: %v\nsize: %d\nphysical size: %d\n", t.DirectDownload, t.Size, t.PhysicalSize)
	fmt.Fprintf(w, "owner: %s\ncreated: %s\n", printable(t.Owner), t.Created)
	if t.Removed != nil {
		fmt.Fprintf(w, "removed: %s\n", *t.Removed)
	}
	zones := make([]template.ZoneID, len(t.Zones))
	for i, z := range t.Zones {
		zones[i] = template.ZoneID(z)
	}
	fmt.Fprintf(w, "zones: %s\n", joinZones(zones))
	keys := make([]string, 0, len(t.Details))
	for k := range t.Details {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Fprintf(w, "details:\n")
	for _, k := range keys {
		fmt.Fprintf(w, "    %s=%s\n", printable(k), printable(t.Details[k]))
	}
	fmt.Fprintf(w, "store refs:\n")
	for _, s := range t.StoreRefs {
		fmt.Fprintf(w, "    store %d (%s) in zone %d: %s %d%%", s.Store, s.Kind, s.Zone, s.State, s.Progress)
		if s.InstallPath != "" {
			fmt.Fprintf(w, " at %s", printable(s.InstallPath))
		}
		if s.Error != "" {
			fmt.Fprintf(w, ": %s", printable(s.Error))
		}
		fmt.Fprintln(w)
	}
}

// templateJSON is a template as list -json and show -json print it; the
// keys are documented at the top of this file.
type templateJSON struct {
	ID             int64             `json:"id"`
	UUID           string            `json:"uuid"`
	Name           string            `json:"name"`
	DisplayText    string            `json:"display_text"`
	Format         string            `json:"format"`
	Type           string            `json:"type"`
	Hypervisor     string            `json:"hypervisor"`
	URL            string            `json:"url"`
	Checksum       string            `json:"checksum"`
	DirectDownload bool              `json:"direct_download"`
	Size           int64             `json:"size"`
	PhysicalSize   int64             `json:"physical_size"`
	Owner          string            `json:"owner"`
	Created        string            `json:"created"`
	Removed        *string           `json:"removed"`
	Details        map[string]string `json:"details"`
	Zones          []int64           `json:"zones"`
}

// showJSON is a template with its store refs, as show -json prints it.
type showJSON struct {
	templateJSON
	StoreRefs []storeRefJSON `json:"store_refs"`
}

// storeRefJSON is one element of show -json's store_refs.
type storeRefJSON struct {
	Store        int64  `json:"store"`
	Zone         int64  `json:"zone"`
	Kind         string `json:"kind"`
	State        string `json:"state"`
	Progress     int    `json:"progress"`
	Error        string `json:"error"`
	InstallPath  string `json:"install_path"`
	Size         int64  `json:"size"`
	PhysicalSize int64  `json:"physical_size"`
	Version      int64  `json:"version"`
	Updated      string `json:"updated"`
}

func toJSON(t template.Template) templateJSON {
	j := templateJSON{
		ID:             int64(t.ID),
		UUID:           t.UUID,
		Name:           t.Name,
		DisplayText:    t.DisplayText,
		Format:         string(t.Format),
		Type:           string(t.Type),
		Hypervisor:     t.Hypervisor,
		URL:            t.URL,
		Checksum:       t.Checksum,
		DirectDownload: t.DirectDownload,
		Size:           t.Size,
		PhysicalSize:   t.PhysicalSize,
		Owner:          t.Owner,
		Created:        rfc3339(t.Created),
		Details:        t.Details,
		Zones:          make([]int64, len(t.Zones)),
	}
	if !t.Removed.IsZero() {
		s := rfc3339(t.Removed)
		j.Removed = &s
	}
	if j.Details == nil {
		j.Details = map[string]string{}
	}
	for i, z := range t.Zones {
		j.Zones[i] = int64(z)
	}
	return j
}

// rfc3339 formats t in UTC, keeping its fractional seconds.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

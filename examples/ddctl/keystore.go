package main

// ddctl keystore: the trust store of a Java client (a CloudStack KVM
// agent's, say), changed through certstore.FileStore, or through keytool
// with -keytool.
//
//	ddctl keystore import -keystore FILE -storepass P -alias A -file PEM [-force] [-json]
//	ddctl keystore list   -keystore FILE -storepass P [-alias A] [-json]
//	ddctl keystore delete -keystore FILE -storepass P -alias A [-json]
//
// FILE is a JKS or PKCS12 store, told apart by its first bytes; any
// other file (a PEM bundle, say) is refused. A FILE that does not exist
// yet is created by import, with or without -keytool: PKCS12 when its
// name ends in .p12 or .pfx (or with -storetype PKCS12), JKS otherwise.
// Every file written is readable by keytool -list and by Java. A PKCS12 store that
// holds a private key (CloudStack's cloud.jks on Java 9 and later) can
// only be changed through keytool: give -keytool.
//
// import reads every certificate of -file (PEM, base64 DER or DER) and
// imports the first under -alias, the others under ALIAS-2, ALIAS-3, ...
// (as the certstore registry names a bundle's certificates). Aliases are
// lowercase DNS labels, and "cloud" and "cloudca..." are the agent's own.
// Like keytool, import refuses an alias the store already has, unless
// -force, which replaces its certificate. It warns on stderr about a
// certificate that is not a CA (trusting it pins that one certificate, and
// its issuer is the better anchor) or is outside its validity period. It
// prints the imported aliases on stdout, one a line.
//
// list prints a table of the trusted certificate entries on stderr.
// delete removes one; an alias the store does not have fails (exit 1).
//
// With -json, import and list print a JSON array of entries, and delete
// the deleted entry, on stdout:
//
//	alias       string  the entry's alias
//	subject     string  the certificate's subject, as RFC 2253
//	issuer      string  its issuer
//	not_before  string  RFC 3339, UTC
//	not_after   string  RFC 3339, UTC
//	sha256      string  SHA-256 fingerprint of the DER, lowercase hex
//	is_ca       bool    basic constraints say CA
//
// Exit codes: 0 success, 1 failure (a wrong password, an alias that
// exists or does not, a store that cannot be written), 2 usage error.

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/directdl/directdl/certstore"
)

// keystoreCommands are the subcommands of ddctl keystore.
var keystoreCommands = map[string]command{
	"import": {"-keystore FILE -storepass P -alias A -file PEM [-force] [-storetype JKS|PKCS12] [-keytool] [-json]", keystoreImport},
	"list":   {"-keystore FILE -storepass P [-alias A] [-keytool] [-json]", keystoreList},
	"delete": {"-keystore FILE -storepass P -alias A [-keytool] [-json]", keystoreDelete},
}

// keystoreFlags are the flags every keystore subcommand takes.
type keystoreFlags struct {
	keystore, storepass, alias, storetype string
	keytool, json                         bool
	set                                   map[string]bool
}

func (f *keystoreFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.keystore, "keystore", "", "the store `FILE`, JKS or PKCS12 (required)")
	fs.StringVar(&f.storepass, "storepass", "", "the store's `password` (required; keytool's default is changeit)")
	fs.StringVar(&f.alias, "alias", "", "the entry's `alias`")
	fs.BoolVar(&f.keytool, "keytool", false, "change the store through keytool, as a PKCS12 store with a private key (cloud.jks) needs")
	fs.BoolVar(&f.json, "json", false, "print the entries as JSON on stdout")
}

// parse parses args and checks the flags all subcommands need.
func (f *keystoreFlags) parse(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	switch {
	case fs.NArg() != 0:
		return usageErr("unexpected argument %q: everything is given by flags", fs.Arg(0))
	case f.keystore == "":
		return usageErr("-keystore FILE required")
	case !f.set["storepass"]:
		return usageErr("-storepass P required: the store's password (keytool's default is changeit)")
	}
	return nil
}

// open returns the store the flags name.
func (f *keystoreFlags) open() (certstore.TrustStore, error) {
	var format certstore.Format
	switch strings.ToUpper(f.storetype) {
	case "":
	case "JKS":
		format = certstore.FormatJKS
	case "PKCS12":
		format = certstore.FormatPKCS12
	default:
		return nil, usageErr("-storetype %q: want JKS or PKCS12", f.storetype)
	}
	fi, err := os.Stat(f.keystore)
	switch {
	case err == nil && fi.IsDir():
		return nil, usageErr("-keystore %s is a directory, not a JKS or PKCS12 file", f.keystore)
	case err == nil:
		// An existing store keeps its format, which must be one keytool
		// reads: certstore would take a PEM bundle, and write it back as
		// PEM.
		if err := checkKeystoreFile(f.keystore); err != nil {
			return nil, err
		}
	case format == 0:
		// A new store is JKS whatever its name (certstore would make
		// trust.pem a PEM bundle, keytool a PKCS12 file), unless named
		// .p12 or .pfx.
		format = certstore.FormatJKS
		if ext := strings.ToLower(filepath.Ext(f.keystore)); ext == ".p12" || ext == ".pfx" {
			format = certstore.FormatPKCS12
		}
	}
	if f.keytool {
		var opts []certstore.KeytoolOption
		if format != 0 {
			opts = append(opts, certstore.WithKeytoolFormat(format))
		}
		return certstore.NewKeytoolStore(f.keystore, f.storepass, opts...)
	}
	var opts []certstore.FileStoreOption
	if format != 0 {
		opts = append(opts, certstore.WithFileFormat(format))
	}
	s, err := certstore.OpenFileStore(f.keystore, f.storepass, opts...)
	if err != nil {
		return nil, keystoreError(err)
	}
	return s, nil
}

// checkKeystoreFile refuses a file that is not a JKS or PKCS12 store
// (ddctl keystore writes only what keytool -list reads), by its first
// bytes.
func checkKeystoreFile(path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("-keystore: %w", err)
	}
	defer fh.Close()
	head := make([]byte, 64<<10) // enough for text before a PEM block
	n, err := io.ReadFull(fh, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("-keystore: reading %s: %w", path, err)
	}
	format, err := certstore.DetectFormat(head[:n])
	switch {
	case err != nil:
		return fmt.Errorf("-keystore %s: %w", path, err)
	case format != certstore.FormatJKS && format != certstore.FormatPKCS12:
		return fmt.Errorf("-keystore %s is a %v file, not a JKS or PKCS12 store: ddctl keystore changes only stores keytool reads; import its certificates into a new store (ddctl keystore import -keystore NEW.jks -file %s)", path, format, path)
	}
	return nil
}

// mustExist fails when the store is not there: list and delete of a
// missing file is a mistyped path, not an empty store.
func (f *keystoreFlags) mustExist() error {
	if _, err := os.Stat(f.keystore); err != nil {
		return fmt.Errorf("-keystore: %w", err)
	}
	return nil
}

// keystoreError adds to err the ddctl flag that addresses it.
func keystoreError(err error) error {
	switch {
	case errors.Is(err, certstore.ErrWrongPassword):
		return fmt.Errorf("%v (ddctl: check -storepass)", err)
	case errors.Is(err, certstore.ErrNeedsKeytool):
		return fmt.Errorf("%v (ddctl: add -keytool to change it through keytool)", err)
	}
	return err
}

// entryJSON is one entry of the -json output. Its keys are part of
// ddctl's contract.
type entryJSON struct {
	Alias string `json:"alias"`
	certstore.CertInfo
	// DaysLeft and Expiry are the certificate's expiry at the default
	// thresholds (certstore.CheckExpiry: warning at 30 days, critical at 7).
	DaysLeft int             `json:"days_left"`
	Expiry   certstore.Level `json:"expiry"`
	line     string
}

func describeEntry(e certstore.Entry) entryJSON {
	x := certstore.CheckExpiry(e.Alias, []certstore.Entry{e}, time.Now(), certstore.Thresholds{}).Certs[0]
	return entryJSON{Alias: e.Alias, CertInfo: x.CertInfo, DaysLeft: x.DaysLeft, Expiry: x.Level, line: x.String()}
}

// keystoreImport is ddctl keystore import.
func keystoreImport(ctx context.Context, e env, args []string) error {
	fs := newFlags("keystore import")
	var f keystoreFlags
	f.register(fs)
	file := fs.String("file", "", "`PEM` file of the certificates to import (PEM, base64 DER or DER; required)")
	force := fs.Bool("force", false, "replace the certificate of an alias the store already has")
	fs.StringVar(&f.storetype, "storetype", "", "`type` of a store that does not exist yet: JKS or PKCS12 (default: PKCS12 for a .p12 or .pfx name, else JKS)")
	if err := f.parse(fs, args); err != nil {
		return err
	}
	switch {
	case f.alias == "":
		return usageErr("-alias A required: the alias to import under")
	case *file == "":
		return usageErr("-file PEM required: the certificates to import")
	}
	if err := certstore.ValidateAlias(f.alias); err != nil {
		return usageErr("-alias: %v", err)
	}
	data, err := os.ReadFile(*file)
	if err != nil {
		return fmt.Errorf("-file: %w", err)
	}
	certs, err := certstore.ParseCertificates(data)
	if err != nil {
		return fmt.Errorf("-file %s: %w", *file, err)
	}
	entries := make([]certstore.Entry, len(certs))
	for i, c := range certs {
		alias := f.alias
		if i > 0 {
			alias += "-" + strconv.Itoa(i+1)
		}
		if err := certstore.ValidateAlias(alias); err != nil {
			return usageErr("-alias: %v (the alias of certificate %d of -file)", err, i+1)
		}
		entries[i] = certstore.Entry{Alias: alias, Cert: c}
	}
	store, err := f.open()
	if err != nil {
		return err
	}
	existing, err := store.Entries(ctx)
	if err != nil {
		return keystoreError(err)
	}
	if !*force {
		for _, x := range existing {
			for _, n := range entries {
				if x.Alias == n.Alias {
					return fmt.Errorf("%s already has the alias %q (%s); delete it first, or give -force to replace it", f.keystore, x.Alias, x.Cert.Subject)
				}
			}
		}
	}
	warnAnchors(e, entries, certs)
	out := make([]entryJSON, 0, len(entries))
	for _, n := range entries {
		if err := store.Import(ctx, n); err != nil {
			if len(out) > 0 {
				err = fmt.Errorf("%w (imported before the failure: %s)", err, joinAliases(out))
			}
			return keystoreError(err)
		}
		out = append(out, describeEntry(n))
		if !f.json {
			fmt.Fprintln(e.stdout, n.Alias)
			fmt.Fprintf(e.stderr, "imported %s (%s) into %s\n", n.Alias, n.Cert.Subject, f.keystore)
		}
	}
	if f.json {
		return writeJSON(e, out)
	}
	return nil
}

func joinAliases(es []entryJSON) string {
	s := make([]string, len(es))
	for i, x := range es {
		s[i] = x.Alias
	}
	return strings.Join(s, ", ")
}

// warnAnchors warns about certificates that make poor trust anchors.
func warnAnchors(e env, entries []certstore.Entry, bundle []*x509.Certificate) {
	now := time.Now()
	for _, n := range entries {
		c := n.Cert
		if !(c.BasicConstraintsValid && c.IsCA) {
			better := "its issuer " + c.Issuer.String()
			for _, o := range bundle {
				if o != c && bytes.Equal(o.RawSubject, c.RawIssuer) {
					better += " (also in -file)"
				}
			}
			fmt.Fprintf(e.stderr, "warning: %s (%s) is not a CA certificate: trusting it pins this one certificate, which breaks when the server renews it; %s is the better anchor\n", n.Alias, c.Subject, better)
		}
		switch {
		case now.After(c.NotAfter):
			fmt.Fprintf(e.stderr, "warning: %s (%s) expired on %s\n", n.Alias, c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
		case now.Before(c.NotBefore):
			fmt.Fprintf(e.stderr, "warning: %s (%s) is not valid before %s\n", n.Alias, c.Subject, c.NotBefore.UTC().Format(time.RFC3339))
		}
	}
}

// keystoreList is ddctl keystore list.
func keystoreList(ctx context.Context, e env, args []string) error {
	fs := newFlags("keystore list")
	var f keystoreFlags
	f.register(fs)
	if err := f.parse(fs, args); err != nil {
		return err
	}
	if err := f.mustExist(); err != nil {
		return err
	}
	store, err := f.open()
	if err != nil {
		return err
	}
	entries, err := store.Entries(ctx)
	if err != nil {
		return keystoreError(err)
	}
	out := []entryJSON{}
	for _, x := range entries {
		if f.alias == "" || x.Alias == f.alias {
			out = append(out, describeEntry(x))
		}
	}
	if f.alias != "" && len(out) == 0 {
		return fmt.Errorf("%s has no trusted certificate entry %q", f.keystore, f.alias)
	}
	if f.json {
		return writeJSON(e, out)
	}
	if len(out) == 0 {
		fmt.Fprintf(e.stderr, "%s has no trusted certificate entries\n", f.keystore)
		return nil
	}
	tw := tabwriter.NewWriter(e.stderr, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ALIAS\tSUBJECT\tNOT AFTER\tEXPIRY\tCA\tSHA-256")
	for _, x := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\n", printable(x.Alias), printable(x.Subject), x.NotAfter.Format("2006-01-02"), x.Expiry, x.IsCA, x.SHA256)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, x := range out {
		if x.Expiry != certstore.LevelOK {
			fmt.Fprintf(e.stderr, "ddctl: warning: %s\n", printable(x.line))
		}
	}
	return nil
}

// keystoreDelete is ddctl keystore delete.
func keystoreDelete(ctx context.Context, e env, args []string) error {
	fs := newFlags("keystore delete")
	var f keystoreFlags
	f.register(fs)
	if err := f.parse(fs, args); err != nil {
		return err
	}
	if f.alias == "" {
		return usageErr("-alias A required: the entry to delete")
	}
	if err := f.mustExist(); err != nil {
		return err
	}
	store, err := f.open()
	if err != nil {
		return err
	}
	entries, err := store.Entries(ctx)
	if err != nil {
		return keystoreError(err)
	}
	var gone *certstore.Entry
	for i := range entries {
		if entries[i].Alias == f.alias {
			gone = &entries[i]
		}
	}
	// Delete says why an alias cannot go: absent, or a private key.
	if err := store.Delete(ctx, f.alias); err != nil {
		return keystoreError(err)
	}
	if gone == nil { // imported by another process since Entries
		fmt.Fprintf(e.stderr, "deleted %s from %s\n", f.alias, f.keystore)
		if f.json {
			return writeJSON(e, map[string]string{"alias": f.alias})
		}
		return nil
	}
	fmt.Fprintf(e.stderr, "deleted %s (%s) from %s\n", gone.Alias, gone.Cert.Subject, f.keystore)
	if f.json {
		return writeJSON(e, describeEntry(*gone))
	}
	return nil
}

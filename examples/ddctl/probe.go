package main

// ddctl probe: follow a URL's redirect chain hop by hop and say, for every
// TLS hop, whether its chain verifies and, when not, which certificate is
// missing or wrong (certstore.Probe). ddctl certs fetch: write the chain of
// the final hop as PEM, completed through AIA with -aia (certstore.Complete).
//
// Exit codes: probe exits 0 when every hop verifies, 1 otherwise; certs
// fetch exits 0 when the file was written, 1 when not; both exit 2 on a
// usage error.

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/internal/atomicfile"
)

const (
	probeUsage      = "[-json] [-aia] [-ca-file PEM]... [-allow-cidr CIDR]... [flags] URL"
	certsFetchUsage = "[-aia] [-ca-file PEM]... [-allow-cidr CIDR]... [flags] -o FILE URL"
)

// certsCommands are the subcommands of ddctl certs.
var certsCommands = map[string]command{
	"fetch": {certsFetchUsage, certsFetchCmd},
}

// probeFlags are the flags ddctl probe and ddctl certs fetch share.
type probeFlags struct {
	caFiles          stringList
	noSystemRoots    bool
	allow, deny      prefixList
	onlyAllowed      bool
	aia              bool
	allAddresses     bool
	followUnverified bool
	maxRedirects     int
	timeout          time.Duration
}

func (f *probeFlags) register(fs *flag.FlagSet) {
	fs.Var(&f.caFiles, "ca-file", "`PEM` file of certificates to trust besides the system's roots (repeatable)")
	fs.BoolVar(&f.noSystemRoots, "no-system-roots", false, "trust only the -ca-file certificates, as an agent that trusts only its own store")
	fs.Var(&f.allow, "allow-cidr", "`CIDR` (or IP) to allow even if special, such as 127.0.0.0/8 (repeatable, or comma-separated); applies to AIA fetches too")
	fs.Var(&f.deny, "deny-cidr", "`CIDR` (or IP) to refuse, whatever -allow-cidr says (repeatable, or comma-separated)")
	fs.BoolVar(&f.onlyAllowed, "only-allowed", false, "refuse every address outside the -allow-cidr prefixes")
	fs.BoolVar(&f.aia, "aia", false, "fetch missing issuers through the certificates' AIA caIssuers URLs")
	fs.BoolVar(&f.allAddresses, "all-addresses", false, "connect to every address of each host and report each one's chain")
	fs.BoolVar(&f.followUnverified, "follow-unverified", false, "send the request (and follow redirects) even to a hop whose TLS did not verify; its URL may carry a signed URL's secret")
	fs.IntVar(&f.maxRedirects, "max-redirects", certstore.DefaultProbeMaxRedirects, "`N` redirects to follow at most (0: none)")
	fs.DurationVar(&f.timeout, "timeout", certstore.DefaultProbeTimeout, "bound on each hop: connecting, the TLS handshake and the response's headers")
}

// check finds the usage errors of the shared flags.
func (f *probeFlags) check() error {
	if f.onlyAllowed && len(f.allow) == 0 {
		return usageErr("-only-allowed needs at least one -allow-cidr")
	}
	if f.noSystemRoots && len(f.caFiles) == 0 {
		return usageErr("-no-system-roots needs at least one -ca-file: nothing would be trusted")
	}
	if f.maxRedirects < 0 {
		return usageErr("-max-redirects %d: want 0 or more", f.maxRedirects)
	}
	if f.timeout <= 0 {
		return usageErr("-timeout %s: want a positive duration", f.timeout)
	}
	return nil
}

func (f *probeFlags) policy() certstore.Policy {
	return certstore.Policy{Allow: f.allow, Deny: f.deny, OnlyAllowed: f.onlyAllowed}
}

// options turns the flags into certstore.ProbeOptions; its errors name the
// file that could not be read.
func (f *probeFlags) options() (certstore.ProbeOptions, error) {
	roots, err := probeRoots(f.caFiles, !f.noSystemRoots)
	if err != nil {
		return certstore.ProbeOptions{}, err
	}
	maxRedirects := f.maxRedirects
	if maxRedirects == 0 {
		maxRedirects = -1 // certstore's "none"
	}
	return certstore.ProbeOptions{
		Roots:            roots,
		Policy:           f.policy(),
		MaxRedirects:     maxRedirects,
		Timeout:          f.timeout,
		AllAddresses:     f.allAddresses,
		AIA:              f.aia,
		FollowUnverified: f.followUnverified,
	}, nil
}

// probeRoots is the pool to verify against: the system roots (unless
// system is false) and the certificates of the -ca-file files.
func probeRoots(caFiles []string, system bool) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if system {
		sys, err := certstore.SystemRoots()
		switch {
		case err == nil:
			pool = sys
		case len(caFiles) == 0:
			return nil, fmt.Errorf("%v; give the CA to trust with -ca-file", err)
		}
	}
	for _, name := range caFiles {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("-ca-file: %w", err)
		}
		certs, err := certstore.ParseCertificates(data)
		if err != nil {
			return nil, fmt.Errorf("-ca-file %s: %w", name, err)
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
	}
	return pool, nil
}

// probeCmd is ddctl probe.
func probeCmd(ctx context.Context, e env, args []string) error {
	fs := newFlags("probe")
	var f probeFlags
	f.register(fs)
	jsonOut := fs.Bool("json", false, "print the report as JSON on stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr("want exactly one URL after the flags, got %d arguments", fs.NArg())
	}
	opts, err := f.options()
	if err != nil {
		return err
	}
	rep, err := certstore.Probe(ctx, fs.Arg(0), opts)
	if errors.Is(err, certstore.ErrInvalidOptions) {
		return usageErr("%v", err)
	}
	if err != nil && rep == nil {
		return err
	}
	if *jsonOut {
		if werr := writeJSON(e, rep); werr != nil {
			return werr
		}
	} else {
		printProbe(e.stderr, rep)
	}
	if err != nil {
		return err
	}
	if !rep.OK {
		return errors.New(probeFailure(rep))
	}
	return nil
}

// probeFailure is the one-line error of a probe that is not OK.
func probeFailure(rep *certstore.ProbeReport) string {
	var bad []string
	for i := range rep.Hops {
		h := &rep.Hops[i]
		if h.Verified() {
			continue
		}
		switch {
		case h.Error != "":
			bad = append(bad, fmt.Sprintf("hop %d failed", h.Index))
		case h.TLS != nil && !h.TLS.Verified:
			bad = append(bad, fmt.Sprintf("hop %d: %s", h.Index, h.TLS.Problem))
		default:
			for _, ed := range h.Edges {
				if ed.TLS != nil && !ed.TLS.Verified {
					bad = append(bad, fmt.Sprintf("hop %d at %s: %s", h.Index, ed.Address, ed.TLS.Problem))
				} else if ed.Error != "" {
					bad = append(bad, fmt.Sprintf("hop %d at %s failed", h.Index, ed.Address))
				}
			}
		}
	}
	msg := "probe: not every hop verifies"
	if len(bad) > 0 {
		msg += " (" + strings.Join(bad, "; ") + ")"
	}
	if rep.Stopped != "" && len(bad) == 0 {
		msg += ": " + rep.Stopped
	}
	return msg
}

// printProbe writes the report for people: one block per hop.
func printProbe(w io.Writer, rep *certstore.ProbeReport) {
	for i := range rep.Hops {
		h := &rep.Hops[i]
		fmt.Fprintf(w, "hop %d  %s\n", h.Index, h.URL)
		if len(h.Addresses) > 0 {
			line := strings.Join(h.Addresses, ", ")
			if h.Address != "" && len(h.Addresses) > 1 {
				line += " (connected to " + h.Address + ")"
			}
			fmt.Fprintf(w, "  addresses  %s\n", line)
		}
		switch {
		case h.Status != 0 && h.Location != "":
			fmt.Fprintf(w, "  status     %d -> %s\n", h.Status, h.Location)
		case h.Status != 0:
			fmt.Fprintf(w, "  status     %d\n", h.Status)
		case h.Error == "" && !h.RequestSent:
			fmt.Fprintf(w, "  status     request not sent: the TLS did not verify\n")
		}
		if h.TLS != nil && len(h.Edges) == 0 {
			printTLS(w, "  ", h.TLS)
		}
		for _, ed := range h.Edges {
			fmt.Fprintf(w, "  at %s\n", ed.Address)
			if ed.TLS != nil {
				printTLS(w, "    ", ed.TLS)
			}
			if ed.Error != "" {
				fmt.Fprintf(w, "    error      %s\n", ed.Error)
			}
		}
		if h.Error != "" {
			fmt.Fprintf(w, "  error      %s\n", h.Error)
		}
	}
	if rep.Stopped != "" {
		fmt.Fprintf(w, "stopped: %s\n", rep.Stopped)
	}
	if rep.OK {
		fmt.Fprintln(w, "ok: every hop verifies")
	} else {
		fmt.Fprintln(w, "NOT OK")
	}
}

func printTLS(w io.Writer, indent string, t *certstore.TLSResult) {
	sni := t.ServerName
	if sni == "" {
		sni = "none (IP address)"
	}
	fmt.Fprintf(w, "%stls        %s, SNI %s\n", indent, t.Version, sni)
	fmt.Fprintf(w, "%schain as served:\n", indent)
	for i, c := range t.Chain {
		fmt.Fprintf(w, "%s  [%d] %s\n", indent, i, c.Subject)
		fmt.Fprintf(w, "%s      issuer %s; valid %s to %s; sha256 %s\n", indent, c.Issuer,
			c.NotBefore.Format("2006-01-02"), c.NotAfter.Format("2006-01-02"), c.SHA256)
	}
	if len(t.Fetched) > 0 {
		fmt.Fprintf(w, "%sfetched through AIA:\n", indent)
		for _, c := range t.Fetched {
			fmt.Fprintf(w, "%s  %s from %s; sha256 %s\n", indent, c.Subject, c.URL, c.SHA256)
		}
	}
	if t.Verified {
		fmt.Fprintf(w, "%sverified   yes\n", indent)
		return
	}
	verdict := string(t.Problem)
	if len(t.Problems) > 1 {
		var also []string
		for _, p := range t.Problems[1:] {
			also = append(also, string(p))
		}
		verdict += "; also " + strings.Join(also, ", ")
	}
	fmt.Fprintf(w, "%sverified   NO: %s\n", indent, verdict)
	fmt.Fprintf(w, "%s%s\n", indent, t.Explanation)
}

// certsFetchCmd is ddctl certs fetch.
func certsFetchCmd(ctx context.Context, e env, args []string) error {
	fs := newFlags("certs fetch")
	var f probeFlags
	f.register(fs)
	out := fs.String("o", "", "`FILE` to write the PEM chain to")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	if *out == "" {
		return usageErr("-o FILE required")
	}
	if fs.NArg() != 1 {
		return usageErr("want exactly one URL after the flags, got %d arguments", fs.NArg())
	}
	opts, err := f.options()
	if err != nil {
		return err
	}
	// The chain as served is what is written: AIA runs below, on the
	// final hop only, whether or not its chain verifies.
	opts.AIA = false
	rep, err := certstore.Probe(ctx, fs.Arg(0), opts)
	if errors.Is(err, certstore.ErrInvalidOptions) {
		return usageErr("%v", err)
	}
	if err != nil {
		return err
	}
	final := rep.Final()
	switch {
	case final.Error != "":
		return fmt.Errorf("certs fetch: %s", rep.Stopped)
	case final.TLS == nil:
		return fmt.Errorf("certs fetch: the final hop %s is plain HTTP: there is no certificate to fetch", final.URL)
	}
	if !final.RequestSent {
		fmt.Fprintf(e.stderr, "ddctl: warning: %s; the chain written is hop %d's\n", rep.Stopped, final.Index)
	}
	chain := final.TLS.Certificates
	if f.aia {
		completed, fetched, err := certstore.Complete(ctx, chain, certstore.CompleteOptions{Policy: f.policy()})
		if err != nil {
			return fmt.Errorf("certs fetch: %v (nothing written; without -aia the chain as served can be saved)", err)
		}
		chain = completed
		for _, c := range fetched {
			fmt.Fprintf(e.stderr, "fetched through AIA: %s (sha256 %s)\n", c.Subject, certstore.Fingerprint(c))
		}
	}
	data := certstore.EncodePEM(chain...)
	if err := atomicfile.Write(*out, 0o644, func(fl *os.File) error {
		_, err := fl.Write(data)
		return err
	}); err != nil {
		return fmt.Errorf("certs fetch: writing %s: %w", *out, err)
	}
	fmt.Fprintf(e.stderr, "wrote %d certificates of hop %d (%s) to %s:\n", len(chain), final.Index, final.URL, *out)
	for i, c := range chain {
		fmt.Fprintf(e.stderr, "  [%d] %s (sha256 %s)\n", i, c.Subject, certstore.Fingerprint(c))
	}
	return nil
}

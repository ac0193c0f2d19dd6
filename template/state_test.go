package template_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/directdl/directdl/template"
)

var allStates = []template.DownloadState{
	template.NotDownloaded, template.DownloadInProgress, template.Downloaded,
	template.DownloadError, template.Abandoned, template.Bypassed,
}

func TestCanTransition(t *testing.T) {
	const (
		nd = template.NotDownloaded
		ip = template.DownloadInProgress
		dl = template.Downloaded
		er = template.DownloadError
		ab = template.Abandoned
		by = template.Bypassed
	)
	allowed := map[[2]template.DownloadState]bool{
		{nd, ip}: true, {nd, er}: true, {nd, ab}: true,
		{ip, ip}: true, {ip, dl}: true, {ip, er}: true, {ip, ab}: true,
		{er, nd}: true, {er, ip}: true, {er, ab}: true,
		{dl, nd}: true,
		{ab, nd}: true,
		{by, ip}: true, {by, nd}: true,
	}
	for _, from := range append(allStates, "UPLOADED", "") {
		for _, to := range append(allStates, "UPLOADED", "") {
			want := allowed[[2]template.DownloadState{from, to}]
			if got := template.CanTransition(from, to); got != want {
				t.Errorf("CanTransition(%q, %q) = %v, want %v", from, to, got, want)
			}
			if got := slices.Contains(template.Next(from), to); got != want {
				t.Errorf("Next(%q) contains %q: %v, want %v", from, to, got, want)
			}
		}
	}
}

func TestNextIsACopy(t *testing.T) {
	n := template.Next(template.NotDownloaded)
	n[0] = template.Downloaded
	if template.CanTransition(template.NotDownloaded, template.Downloaded) {
		t.Fatal("changing the slice Next returned changed the state machine")
	}
}

func TestValidInitial(t *testing.T) {
	for _, s := range append(allStates, "") {
		want := s == template.NotDownloaded || s == template.Bypassed
		if got := template.ValidInitial(s); got != want {
			t.Errorf("ValidInitial(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestCheckUpdate(t *testing.T) {
	ref := func(s template.DownloadState, p int) template.StoreRef {
		return template.StoreRef{Template: 7, Store: 3, State: s, Progress: p}
	}
	cases := []struct {
		ref  template.StoreRef
		u    template.StoreUpdate
		want error // nil, ErrTransition or ErrInvalid
	}{
		{ref(template.NotDownloaded, 0), template.StoreUpdate{State: template.DownloadInProgress}, nil},
		{ref(template.NotDownloaded, 0), template.StoreUpdate{State: template.Downloaded, Progress: 100}, template.ErrTransition},
		{ref(template.DownloadInProgress, 40), template.StoreUpdate{State: template.DownloadInProgress, Progress: 40}, nil},
		{ref(template.DownloadInProgress, 40), template.StoreUpdate{State: template.DownloadInProgress, Progress: 41}, nil},
		{ref(template.DownloadInProgress, 40), template.StoreUpdate{State: template.DownloadInProgress, Progress: 39}, template.ErrInvalid},
		{ref(template.DownloadInProgress, 40), template.StoreUpdate{State: template.DownloadError, Progress: 0}, nil},
		{ref(template.DownloadInProgress, 40), template.StoreUpdate{State: template.Downloaded, Progress: 99}, template.ErrInvalid},
		{ref(template.DownloadInProgress, 40), template.StoreUpdate{State: template.Downloaded, Progress: 100}, nil},
		{ref(template.DownloadError, 40), template.StoreUpdate{State: template.DownloadInProgress, Progress: 0}, nil},
		{ref(template.NotDownloaded, 0), template.StoreUpdate{State: template.DownloadInProgress, Progress: 101}, template.ErrInvalid},
		{ref(template.NotDownloaded, 0), template.StoreUpdate{State: template.DownloadInProgress, Progress: -1}, template.ErrInvalid},
		{ref(template.NotDownloaded, 0), template.StoreUpdate{State: template.DownloadInProgress, Size: -1}, template.ErrInvalid},
		{ref(template.NotDownloaded, 0), template.StoreUpdate{State: template.DownloadInProgress, PhysicalSize: -1}, template.ErrInvalid},
		{ref(template.Downloaded, 100), template.StoreUpdate{State: template.DownloadInProgress, Progress: 100}, template.ErrTransition},
		{ref(template.Bypassed, 0), template.StoreUpdate{State: template.DownloadInProgress, Progress: 10}, nil},
		{ref(template.Bypassed, 0), template.StoreUpdate{State: template.Bypassed}, template.ErrTransition},
		// The transition is checked before the progress.
		{ref(template.Abandoned, 0), template.StoreUpdate{State: template.Downloaded, Progress: 7}, template.ErrTransition},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s %d%% to %s %d%%", c.ref.State, c.ref.Progress, c.u.State, c.u.Progress)
		err := template.CheckUpdate(c.ref, c.u)
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%s: %v", name, err)
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		case c.want == template.ErrInvalid && errors.Is(err, template.ErrTransition):
			t.Errorf("%s: got %v, an ErrTransition", name, err)
		}
		var te *template.TransitionError
		if errors.As(err, &te) {
			want := template.TransitionError{Template: 7, Store: 3, From: c.ref.State, To: c.u.State}
			if *te != want {
				t.Errorf("%s: got %+v, want %+v", name, *te, want)
			}
		}
	}
}

func TestErrorMessages(t *testing.T) {
	te := &template.TransitionError{Template: 7, Store: 3, From: template.Downloaded, To: template.DownloadInProgress}
	if got := te.Error(); !strings.Contains(got, "DOWNLOADED to DOWNLOAD_IN_PROGRESS") || !strings.Contains(got, "allowed: NOT_DOWNLOADED") {
		t.Errorf("TransitionError: got %q", got)
	}
	iu := &template.InUseError{Template: 7, Zone: 2, Volumes: []string{"a", "b"}}
	if got := iu.Error(); !strings.Contains(got, "zone 2") || !strings.Contains(got, "a, b") || !errors.Is(iu, template.ErrInUse) {
		t.Errorf("InUseError: got %q", got)
	}
	ce := &template.ConflictError{Template: 7, Store: 3, Have: 4, Current: 5}
	if got := ce.Error(); !strings.Contains(got, "version 4, now 5") || !errors.Is(ce, template.ErrConflict) {
		t.Errorf("ConflictError: got %q", got)
	}
}

func TestParseDownloadState(t *testing.T) {
	for _, s := range allStates {
		got, err := template.ParseDownloadState(string(s))
		if err != nil || got != s {
			t.Errorf("ParseDownloadState(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "downloaded", "UPLOADED", " DOWNLOADED"} {
		if _, err := template.ParseDownloadState(s); !errors.Is(err, template.ErrInvalid) {
			t.Errorf("ParseDownloadState(%q): got %v, want ErrInvalid", s, err)
		}
	}
}

func TestParseFormatAndType(t *testing.T) {
	for _, c := range []struct {
		in   string
		want template.Format
	}{{"QCOW2", template.QCOW2}, {"qcow2", template.QCOW2}, {"Raw", template.RAW}, {"vhdx", template.VHDX}, {"baremetal", template.BAREMETAL}} {
		if got, err := template.ParseFormat(c.in); err != nil || got != c.want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, s := range []string{"", "qcow", "QCOW2 "} {
		if _, err := template.ParseFormat(s); !errors.Is(err, template.ErrInvalid) {
			t.Errorf("ParseFormat(%q): got %v, want ErrInvalid", s, err)
		}
	}
	for _, c := range []struct {
		in   string
		want template.Type
	}{{"USER", template.User}, {"user", template.User}, {"DataDisk", template.DataDisk}, {"isodisk", template.ISODisk}} {
		if got, err := template.ParseType(c.in); err != nil || got != c.want {
			t.Errorf("ParseType(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	if _, err := template.ParseType("GOLDEN"); !errors.Is(err, template.ErrInvalid) {
		t.Errorf("ParseType(GOLDEN): got %v, want ErrInvalid", err)
	}
}

func TestNewTemplateValidate(t *testing.T) {
	n := template.NewTemplate{Name: "x", Format: "raw", Type: "system"}
	if err := n.Validate(); err != nil {
		t.Fatal(err)
	}
	if n.Format != template.RAW || n.Type != template.System {
		t.Errorf("Validate: got %s %s, want RAW SYSTEM", n.Format, n.Type)
	}
	n = template.NewTemplate{Name: "x"}
	if err := n.Validate(); err != nil || n.Format != template.QCOW2 || n.Type != template.User {
		t.Errorf("Validate with defaults: got %s %s, %v; want QCOW2 USER", n.Format, n.Type, err)
	}
	for name, n := range map[string]template.NewTemplate{
		"no name":          {},
		"blank name":       {Name: "  "},
		"bad format":       {Name: "x", Format: "qcow3"},
		"bad type":         {Name: "x", Type: "golden"},
		"negative size":    {Name: "x", Size: -1},
		"negative psize":   {Name: "x", PhysicalSize: -1},
		"empty detail key": {Name: "x", Details: map[string]string{"": "v"}},
		"long detail key":  {Name: "x", Details: map[string]string{strings.Repeat("k", 256): "v"}},
	} {
		if err := n.Validate(); !errors.Is(err, template.ErrInvalid) {
			t.Errorf("Validate with %s: got %v, want ErrInvalid", name, err)
		}
	}
	if err := template.ValidDetailKey(strings.Repeat("k", 255)); err != nil {
		t.Errorf("ValidDetailKey of 255 bytes: %v", err)
	}
}

func FuzzParseDownloadState(f *testing.F) {
	for _, s := range allStates {
		f.Add(string(s))
	}
	f.Add("downloaded")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := template.ParseDownloadState(s)
		if err != nil {
			if !errors.Is(err, template.ErrInvalid) {
				t.Fatalf("ParseDownloadState(%q): error %v is not ErrInvalid", s, err)
			}
			if template.CanTransition(template.DownloadState(s), template.NotDownloaded) || len(template.Next(template.DownloadState(s))) != 0 {
				t.Fatalf("unknown state %q has transitions", s)
			}
			return
		}
		if string(st) != s {
			t.Fatalf("ParseDownloadState(%q) = %q", s, st)
		}
		for _, n := range template.Next(st) {
			if _, err := template.ParseDownloadState(string(n)); err != nil {
				t.Fatalf("state %s leads to %s, which does not parse: %v", st, n, err)
			}
		}
	})
}

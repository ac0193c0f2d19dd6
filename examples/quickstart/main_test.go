package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestQuickstart runs the README's first command in-process and checks
// that each step reports what it should.
func TestQuickstart(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"centos-template.qcow2: qcow2 v1.1, virtual size 21474836480 bytes, 65536-byte clusters",
		"i-2-10-VM-root.qcow2: qcow2 v1.1, virtual size 21474836480 bytes",
		"backing file centos-template.qcow2 (qcow2)",
		"centos-template.qcow2: safe to use as a template",
		"i-2-10-VM-root.qcow2: UNSAFE (backing-file)",
		"centos-template.qcow2: 0 corruptions, 0 leaks",
		"i-2-10-VM-root.qcow2: 0 corruptions, 0 leaks",
		"now backed by /var/lib/libvirt/images/centos-template.qcow2 (qcow2)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q\n%s", want, got)
		}
	}
}

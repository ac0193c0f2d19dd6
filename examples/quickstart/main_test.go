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
		"7f3c-template.qcow2: 196928 bytes over 1 connection(s), verified true (sha256:",
		"with a wrong checksum: refused, and nothing left on primary storage",
		"centos-template.meta4: 1062 bytes of Metalink 4, 7 piece hashes, 2 mirrors",
		"centos-template.qcow2: 196928 bytes, verified true,",
		"mirror priority 1: ",
		"dropped: served 2 pieces that failed their sha-256 hash, the last piece 1 (bytes 32768-65535)",
		"mirror priority 2: ",
		"0 bad piece(s), used to the end",
		"download with the mirror's root CA trusted: refused (x509: certificate signed by unknown authority)",
		"hop 1 127.0.0.1:",
		": 2 certificate(s) served, verified, answered 302",
		"hop 2 127.0.0.2:",
		": 1 certificate(s) served, missing-intermediate, request withheld",
		"agent-trust.jks now holds cdn-intermediate, mirror-root",
		"9a1e-template.qcow2: 196928 bytes, verified true, 1 redirect(s)",
		"template 1: active, zones [1 2 3], details map[UEFI:secure]",
		"template 1: active, zones [1 3], details map[UEFI:secure]",
		"template 1: active, zones [3], details map[UEFI:secure]",
		"template 1: removed, zones [], details map[]",
		"vda: full: template ",
		"was deleted (or is unknown) and the destination has no copy of its base",
		"libvirt flags [VIR_MIGRATE_LIVE VIR_MIGRATE_NON_SHARED_DISK]: virsh migrate --live --copy-storage-all --migrate-disks vda",
		"created i-2-11-VM-root.qcow2: virtual size 21474836480 bytes, backing file none",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q\n%s", want, got)
		}
	}
}

package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// CLI.md promises, per disk of ddctl migrate plan -json, the keys
// strategy, source, destination, virtual-size and backing (unlike qcow2
// info, with no "only when there is one"). DiskPlan.Backing is omitempty,
// so a disk copied whole, the #10246 case itself, has no "backing" key and
// a script reading disks[i].backing fails on exactly the disks that matter.
func TestReview9MigratePlanJSONHasBackingKeyForFullDisks(t *testing.T) {
	src, dst, _ := migrateHosts(t)
	spec := migrateSpec(src, dst)
	spec["templates"] = []map[string]any{{"uuid": migrateUUID, "url": "http://127.0.0.1:1/t.qcow2", "checksum": "{SHA-256}" + strings.Repeat("0", 64), "removed": true}}
	code, out, errOut := ddctl(t, "migrate", "plan", "-json", "-spec", writeSpec(t, spec))
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var p struct {
		Disks []map[string]any `json:"disks"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil || len(p.Disks) != 1 {
		t.Fatalf("plan %v: %s", err, out)
	}
	if p.Disks[0]["strategy"] != "full" {
		t.Fatalf("strategy %v, want full", p.Disks[0]["strategy"])
	}
	for _, k := range []string{"strategy", "source", "destination", "virtual-size", "backing"} {
		if _, ok := p.Disks[0][k]; !ok {
			t.Errorf("disk of a full plan has no %q key (CLI.md promises it per disk): %v", k, p.Disks[0])
		}
	}
}

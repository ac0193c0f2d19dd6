package migrate

import (
	"encoding/xml"
	"fmt"
	"strings"
)

// The virDomainMigrateFlags values a plan uses (libvirt-domain.h).
const (
	flagLive          = 1 << 0 // VIR_MIGRATE_LIVE
	flagPersistDest   = 1 << 3 // VIR_MIGRATE_PERSIST_DEST
	flagNonSharedDisk = 1 << 6 // VIR_MIGRATE_NON_SHARED_DISK
	flagNonSharedInc  = 1 << 7 // VIR_MIGRATE_NON_SHARED_INC
)

// setLibvirt fills the plan's libvirt flags and virsh command line. They
// are CloudStack's (MigrateKVMAsync): a live migration, persistent on the
// destination and incremental when disks are linked, a whole copy
// otherwise; --migrate-disks lists every disk of the plan.
func (p *Plan) setLibvirt(uri string) {
	p.LibvirtFlags = []string{"VIR_MIGRATE_LIVE"}
	p.LibvirtFlagBits = flagLive
	args := []string{"virsh", "migrate", "--live"}
	if p.Mode == Incremental {
		p.LibvirtFlags = append(p.LibvirtFlags, "VIR_MIGRATE_PERSIST_DEST", "VIR_MIGRATE_NON_SHARED_INC")
		p.LibvirtFlagBits |= flagPersistDest | flagNonSharedInc
		args = append(args, "--persistent", "--copy-storage-inc")
	} else {
		p.LibvirtFlags = append(p.LibvirtFlags, "VIR_MIGRATE_NON_SHARED_DISK")
		p.LibvirtFlagBits |= flagNonSharedDisk
		args = append(args, "--copy-storage-all")
	}
	labels := make([]string, len(p.Disks))
	moved := false
	for i, d := range p.Disks {
		labels[i] = d.Label
		if d.Destination != d.Source || d.Strategy == Full && len(d.Chain) > 1 {
			moved = true
		}
	}
	args = append(args, "--migrate-disks", strings.Join(labels, ","))
	if moved {
		// The domain XML must then name the destination paths and, for
		// disks copied whole, drop their <backingStore>: DomainDisksXML
		// gives the <disk> elements to put in it.
		args = append(args, "--xml", "DEST_XML")
	}
	vm := p.VM
	if vm == "" {
		vm = "VM"
	}
	if uri == "" {
		uri = "DEST_URI"
	}
	args = append(args, shellQuote(vm), shellQuote(uri))
	p.Virsh = strings.Join(args, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:+@=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// DomainDisksXML returns the <disk> elements of the destination's domain
// XML for the plan's disks, for virsh migrate --xml (or a
// virDomainMigrate3 VIR_MIGRATE_PARAM_DEST_XML): each names its destination
// path and format and, as CloudStack's LibvirtMigrateCommandWrapper does,
// its backing chain on the destination, or an empty <backingStore/> for a
// disk copied whole, which has none. The bus is virtio; adapt the <target>
// when the VM uses another.
func (p *Plan) DomainDisksXML() string {
	var b strings.Builder
	for _, d := range p.Disks {
		fmt.Fprintf(&b, "<disk type='file' device='disk'>\n  <driver name='qemu' type='%s'/>\n  <source file='%s'/>\n", xmlAttr(d.DestinationFormat), xmlAttr(d.Destination))
		indent := "  "
		closing := 0
		if d.Strategy == Linked && len(d.Chain) > 1 {
			for _, l := range d.Chain[1:] {
				fmt.Fprintf(&b, "%s<backingStore type='file'>\n%s  <format type='%s'/>\n%s  <source file='%s'/>\n", indent, indent, xmlAttr(l.Format), indent, xmlAttr(l.DestinationPath))
				indent += "  "
				closing++
			}
		}
		fmt.Fprintf(&b, "%s<backingStore/>\n", indent)
		for ; closing > 0; closing-- {
			indent = indent[2:]
			fmt.Fprintf(&b, "%s</backingStore>\n", indent)
		}
		fmt.Fprintf(&b, "  <target dev='%s' bus='virtio'/>\n</disk>\n", xmlAttr(d.Label))
	}
	return b.String()
}

func xmlAttr(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

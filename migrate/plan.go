package migrate

// Strategy is how one disk is prepared and copied.
type Strategy string

const (
	// Linked: the destination holds the disk's whole backing chain, with
	// the same content, where the disk's backing name resolves there. The
	// destination disk is an overlay with the same backing name and format,
	// and only the top layer is copied (QEMU mirror sync=top).
	Linked Strategy = "linked"
	// Full: the destination disk is an empty image of exactly the source's
	// virtual size with no backing file, and the whole guest-visible
	// content is copied (QEMU mirror sync=full).
	Full Strategy = "full"
)

// Mode is how the whole VM's storage is migrated: libvirt takes one flag
// per VM, not per disk.
type Mode string

const (
	// Incremental is VIR_MIGRATE_NON_SHARED_INC (virsh --copy-storage-inc):
	// only the top layer of each disk is copied. Every disk with a backing
	// file must be Linked.
	Incremental Mode = "incremental"
	// Complete is VIR_MIGRATE_NON_SHARED_DISK (virsh --copy-storage-all):
	// every disk is copied whole, into a destination image with no backing.
	Complete Mode = "full"
)

// Plan is the planner's decision for one VM: per disk what to create on the
// destination and what to copy, the VM's libvirt flags, and what preflight
// found. It is JSON-serialisable; Prepare and the executor take it as it is.
type Plan struct {
	VM string `json:"vm,omitempty"`
	// Mode is the VM's storage migration mode; ModeReason says why.
	Mode       Mode   `json:"mode"`
	ModeReason string `json:"mode-reason"`
	// LibvirtFlags are the virDomainMigrateFlags names for Mode, and
	// LibvirtFlagBits their value (what CloudStack's agent passes).
	LibvirtFlags    []string `json:"libvirt-flags"`
	LibvirtFlagBits uint32   `json:"libvirt-flag-bits"`
	// Virsh is the equivalent virsh migrate command line, with DEST_URI
	// standing for the destination's libvirt URI.
	Virsh string `json:"virsh"`
	// Dir is the destination's storage directory.
	Dir   string     `json:"dir"`
	Disks []DiskPlan `json:"disks"`
	// Fetches are the bases Prepare downloads to the destination before
	// creating the disks, each once however many disks need it.
	Fetches []Fetch `json:"fetches,omitempty"`
	// CopyBytes estimates the bytes the storage migration copies: the
	// allocated bytes of each copied layer.
	CopyBytes int64 `json:"copy-bytes"`
	// NeedBytes estimates the destination space the prepared disks and
	// fetched bases take once the copy is done.
	NeedBytes int64 `json:"need-bytes"`
	// Problems are what preflight found; see Plan.Err.
	Problems []Problem `json:"problems,omitempty"`
}

// DiskPlan is the decision for one disk.
type DiskPlan struct {
	Label string `json:"label"`
	// Source is the source image and Format its format.
	Source string `json:"source"`
	Format string `json:"format"`
	// Destination is the image Prepare creates on the destination, in
	// DestinationFormat ("qcow2" for qcow2 sources, "raw" for raw ones).
	Destination       string `json:"destination"`
	DestinationFormat string `json:"destination-format"`
	// VirtualSize is the source's virtual size, which the destination
	// disk gets exactly (QEMU's mirror refuses a target of another size).
	VirtualSize int64 `json:"virtual-size"`
	// Strategy is what this disk gets. Sync is the QEMU mirror sync mode
	// that goes with it: "top" for Linked, "full" for Full.
	Strategy Strategy `json:"strategy"`
	Sync     string   `json:"sync"`
	// Backing and BackingFormat are the destination disk's backing file
	// name and format: the source's own, for Linked; empty for Full.
	Backing       string `json:"backing"`
	BackingFormat string `json:"backing-format"`
	// Chain is the source's backing chain as read from the images, the
	// disk itself first.
	Chain []Layer `json:"chain"`
	// Fetch is the path of the base Prepare downloads for this disk (one
	// of Plan.Fetches), when the destination lacks it.
	Fetch string `json:"fetch,omitempty"`
	// CopyBytes estimates the bytes copied for this disk.
	CopyBytes int64 `json:"copy-bytes"`
	// Reason says, in plain words, why the disk got its strategy.
	Reason string `json:"reason"`
}

// Layer is one image of a source backing chain.
type Layer struct {
	// Path is the image's path on the source; Name is how the layer above
	// names it ("" for the disk itself).
	Path   string `json:"path"`
	Name   string `json:"name,omitempty"`
	Format string `json:"format"`
	// VirtualSize is the image's virtual size; AllocatedBytes the bytes
	// the file takes on disk (what copying this layer moves, at most).
	VirtualSize    int64 `json:"virtual-size"`
	AllocatedBytes int64 `json:"allocated-bytes"`
	// Digest is the layer's content identity, when it was needed and
	// known: recorded in the Spec, or computed by reading the file.
	Digest string `json:"digest,omitempty"`
	// Unread marks a backing file named by a protocol or without a
	// format: the chain stops there and its size and content are unknown.
	Unread bool `json:"unread,omitempty"`
	// DestinationPath is where the layer's name resolves on the
	// destination, for the backing layers of a Linked disk: joined to the
	// directory of the layer above as QEMU joins it, not cleaned.
	DestinationPath string `json:"destination-path,omitempty"`
}

// Fetch is one base to download to the destination.
type Fetch struct {
	// Template is the template's UUID; URL and Checksum come from the
	// TemplateLookup.
	Template string `json:"template"`
	URL      string `json:"url"`
	Checksum string `json:"checksum"`
	// Path is where the base goes on the destination: where the disks'
	// backing name resolves there.
	Path string `json:"path"`
	// Format and VirtualSize are the source base's, which the fetched
	// file must match.
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
	// Bytes is the base's size on the source, the estimate of what the
	// fetch takes on the destination.
	Bytes int64 `json:"bytes"`
}

// Disk returns the plan of the disk with the given label.
func (p *Plan) Disk(label string) (DiskPlan, bool) {
	for _, d := range p.Disks {
		if d.Label == label {
			return d, true
		}
	}
	return DiskPlan{}, false
}

package template

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ID identifies a template; ZoneID a zone; StoreID an image store or, for
// direct download, a primary-storage pool. Zero is never a valid ID.
type (
	ID      int64
	ZoneID  int64
	StoreID int64
)

// Format is a disk image format, as CloudStack names it.
type Format string

// Formats CloudStack knows.
const (
	QCOW2     Format = "QCOW2"
	RAW       Format = "RAW"
	VHD       Format = "VHD"
	VHDX      Format = "VHDX"
	ISO       Format = "ISO"
	OVA       Format = "OVA"
	VMDK      Format = "VMDK"
	VDI       Format = "VDI"
	TAR       Format = "TAR"
	ZIP       Format = "ZIP"
	DIR       Format = "DIR"
	BAREMETAL Format = "BAREMETAL"
	EXTERNAL  Format = "EXTERNAL"
)

// Type is a template's role, as CloudStack names it.
type Type string

// Types CloudStack knows.
const (
	User     Type = "USER"
	System   Type = "SYSTEM"
	Routing  Type = "ROUTING"
	Builtin  Type = "BUILTIN"
	PerHost  Type = "PERHOST"
	VNF      Type = "VNF"
	DataDisk Type = "DATADISK"
	ISODisk  Type = "ISODISK"
)

var (
	formats = []Format{QCOW2, RAW, VHD, VHDX, ISO, OVA, VMDK, VDI, TAR, ZIP, DIR, BAREMETAL, EXTERNAL}
	types   = []Type{User, System, Routing, Builtin, PerHost, VNF, DataDisk, ISODisk}
)

// ParseFormat returns the Format named s, in any case.
func ParseFormat(s string) (Format, error) {
	for _, f := range formats {
		if strings.EqualFold(s, string(f)) {
			return f, nil
		}
	}
	return "", fmt.Errorf("%w: unknown format %q", ErrInvalid, s)
}

// ParseType returns the Type named s, in any case.
func ParseType(s string) (Type, error) {
	for _, t := range types {
		if strings.EqualFold(s, string(t)) {
			return t, nil
		}
	}
	return "", fmt.Errorf("%w: unknown template type %q", ErrInvalid, s)
}

// Template is one template record, shared by every zone that offers it.
type Template struct {
	ID             ID
	UUID           string
	Name           string
	DisplayText    string
	Format         Format
	Type           Type
	Hypervisor     string // e.g. "KVM"
	URL            string
	Checksum       string // as registered: "{SHA-256}hex", "sha256:hex", ...
	DirectDownload bool
	Size           int64 // virtual size in bytes, 0 when unknown
	PhysicalSize   int64 // bytes of the image file, 0 when unknown
	Owner          string
	Created        time.Time
	// Removed is set once the template is soft-deleted (its last zone ref
	// went); zero while it is active.
	Removed time.Time
	// Details are the template's key/value settings, such as
	// "UEFI": "secure". They belong to the template, not to a zone.
	Details map[string]string
	// Zones are the zones that offer the template, ascending.
	Zones []ZoneID
}

// NewTemplate is what Register needs. UUID may be empty (one is made);
// Format defaults to QCOW2, Type to USER.
type NewTemplate struct {
	UUID           string
	Name           string
	DisplayText    string
	Format         Format
	Type           Type
	Hypervisor     string
	URL            string
	Checksum       string
	DirectDownload bool
	Size           int64
	PhysicalSize   int64
	Owner          string
	Details        map[string]string
}

// Validate reports whether n can be registered, filling in the defaults.
// Errors match ErrInvalid.
func (n *NewTemplate) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
	if strings.TrimSpace(n.Name) == "" {
		return bad("template needs a name")
	}
	if n.Format == "" {
		n.Format = QCOW2
	} else if f, err := ParseFormat(string(n.Format)); err != nil {
		return err
	} else {
		n.Format = f
	}
	if n.Type == "" {
		n.Type = User
	} else if t, err := ParseType(string(n.Type)); err != nil {
		return err
	} else {
		n.Type = t
	}
	if n.Size < 0 || n.PhysicalSize < 0 {
		return bad("negative size")
	}
	for k := range n.Details {
		if err := validDetailKey(k); err != nil {
			return err
		}
	}
	return nil
}

func validDetailKey(k string) error {
	if k == "" || len(k) > 255 {
		return fmt.Errorf("%w: detail key %q must be 1 to 255 bytes", ErrInvalid, k)
	}
	return nil
}

// ValidDetailKey reports whether k may be a detail key (1 to 255 bytes);
// errors match ErrInvalid.
func ValidDetailKey(k string) error { return validDetailKey(k) }

// StoreKind says what a store ref's store is.
type StoreKind string

const (
	// ImageStore is secondary storage, where registered templates are
	// staged.
	ImageStore StoreKind = "image"
	// PrimaryPool is a hypervisor's primary storage, where direct download
	// puts templates.
	PrimaryPool StoreKind = "primary"
)

// StoreRef is a template's copy on one store, with its download state. A
// template has at most one ref per store.
type StoreRef struct {
	Template     ID
	Zone         ZoneID
	Store        StoreID
	Kind         StoreKind
	State        DownloadState
	Progress     int // percent, 0 to 100
	Error        string
	InstallPath  string
	Size         int64
	PhysicalSize int64
	// Version counts the updates of this ref; UpdateStoreRef must be given
	// the version it read, so two agents cannot overwrite each other.
	Version int64
	Updated time.Time
}

// StoreUpdate is a change to a store ref: its new state and the facts that
// go with it.
type StoreUpdate struct {
	State        DownloadState
	Progress     int
	Error        string
	InstallPath  string
	Size         int64
	PhysicalSize int64
}

// Usage records that a volume was created from a template in a zone.
type Usage struct {
	Template ID
	Zone     ZoneID
	Volume   string // the volume's identifier, e.g. its UUID or path
}

// ListOptions selects templates for List.
type ListOptions struct {
	// Zone, when not zero, lists only the templates the zone offers.
	Zone ZoneID
	// Name, when set, matches names containing it (case-insensitive).
	Name string
	// Format and Type, when set, must match.
	Format Format
	Type   Type
	// DirectDownload, when not nil, must match.
	DirectDownload *bool
	// IncludeRemoved lists soft-deleted templates too.
	IncludeRemoved bool
	// After and Limit page through the results in ascending ID order:
	// the page holds templates with IDs above After, at most Limit
	// (zero: DefaultLimit; at most MaxLimit).
	After ID
	Limit int
}

// Paging limits of List.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Page is one page of List. Next is the After of the next page, or zero
// on the last page.
type Page struct {
	Templates []Template
	Next      ID
}

// DeleteOptions changes how Delete* treat templates in use.
type DeleteOptions struct {
	// Force deletes even when volumes use the template.
	Force bool
}

// DeleteResult tells what a delete did.
type DeleteResult struct {
	// Removed is true when the last zone ref went and the template was
	// soft-deleted with its details.
	Removed bool
}

// GetOption changes what Get and GetByUUID return.
type GetOption func(*GetOptions)

// GetOptions is the result of applying GetOptions; implementations read it.
type GetOptions struct{ IncludeRemoved bool }

// IncludeRemoved makes Get return a soft-deleted template too.
func IncludeRemoved() GetOption { return func(o *GetOptions) { o.IncludeRemoved = true } }

// ApplyGetOptions folds opts into a GetOptions, for implementations.
func ApplyGetOptions(opts []GetOption) GetOptions {
	var o GetOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// The roles a repository plays; Repository composes them. Helpers and
// callers should ask for the smallest role they need.
type (
	// Registrar adds templates and offers them in more zones.
	Registrar interface {
		// Register records t as offered in zones (at least one). Errors:
		// ErrInvalid, ErrConflict for a UUID already used.
		Register(ctx context.Context, t NewTemplate, zones ...ZoneID) (Template, error)
		// CopyToZone offers template id in zone too; a zone that
		// already offers it is not an error. ErrNotFound for a removed
		// or unknown template.
		CopyToZone(ctx context.Context, id ID, zone ZoneID) error
	}
	// Getter reads one template.
	Getter interface {
		Get(ctx context.Context, id ID, opts ...GetOption) (Template, error)
		GetByUUID(ctx context.Context, uuid string, opts ...GetOption) (Template, error)
		// TemplateSource returns where the active template with this
		// UUID can be downloaded from and its registered checksum, both
		// as registered. found is false, with a nil error, when no
		// active template has the UUID: never registered, removed, or
		// not a UUID at all (UUIDs are matched exactly, as stored).
		// An error means the lookup itself failed (a cancelled context,
		// a closed repository, a broken database). Implementations can
		// use [Source].
		TemplateSource(ctx context.Context, uuid string) (url, checksum string, found bool, err error)
	}
	// Lister pages through templates.
	Lister interface {
		List(ctx context.Context, o ListOptions) (Page, error)
	}
	// Deleter removes templates from zones.
	Deleter interface {
		// DeleteFromZone removes the zone's ref of template id and the
		// store refs in that zone. The template and its details stay
		// while any other zone offers it; when the last zone goes, the
		// template is soft-deleted and its details removed, all in one
		// step. Volumes in that zone using the template make it fail
		// with an *InUseError (ErrInUse) unless o.Force. ErrNotFound
		// when the zone does not offer the template.
		DeleteFromZone(ctx context.Context, id ID, zone ZoneID, o DeleteOptions) (DeleteResult, error)
		// DeleteEverywhere removes every zone's ref, the store refs, the
		// details, and soft-deletes the template; ErrInUse when any
		// volume uses it, unless o.Force.
		DeleteEverywhere(ctx context.Context, id ID, o DeleteOptions) error
	}
	// DetailStore reads and changes a template's details.
	DetailStore interface {
		Details(ctx context.Context, id ID) (map[string]string, error)
		// SetDetails adds or replaces the given keys; other keys stay.
		SetDetails(ctx context.Context, id ID, details map[string]string) error
		// RemoveDetail removes one key; ErrNotFound when absent.
		RemoveDetail(ctx context.Context, id ID, key string) error
	}
	// StoreRefs keeps the per-store copies and their download states.
	StoreRefs interface {
		// CreateStoreRef adds a ref (Version 1) in a zone that offers the
		// template, in state NotDownloaded unless ref.State says another
		// initial state (Bypassed, for direct download). ErrConflict when
		// the store already has a ref of the template.
		CreateStoreRef(ctx context.Context, ref StoreRef) (StoreRef, error)
		// UpdateStoreRef applies u if the ref is still at version and the
		// transition is allowed (CanTransition); it returns the new ref.
		// ErrConflict (a *ConflictError) when another update came first;
		// ErrTransition (a *TransitionError) for an illegal transition.
		UpdateStoreRef(ctx context.Context, id ID, store StoreID, version int64, u StoreUpdate) (StoreRef, error)
		StoreRef(ctx context.Context, id ID, store StoreID) (StoreRef, error)
		StoreRefs(ctx context.Context, id ID) ([]StoreRef, error)
	}
	// Usages records which volumes use a template.
	Usages interface {
		AddUsage(ctx context.Context, u Usage) error
		RemoveUsage(ctx context.Context, u Usage) error
		Usages(ctx context.Context, id ID) ([]Usage, error)
	}
)

// Repository is the whole template record-keeping: every role, and Close.
// Implementations are safe for concurrent use.
type Repository interface {
	Registrar
	Getter
	Lister
	Deleter
	DetailStore
	StoreRefs
	Usages
	Close() error
}

// Errors of every Repository, for errors.Is.
var (
	ErrNotFound   = errors.New("template: not found")
	ErrConflict   = errors.New("template: conflicting change")
	ErrInUse      = errors.New("template: in use")
	ErrTransition = errors.New("template: illegal store state transition")
	ErrInvalid    = errors.New("template: invalid input")
)

// InUseError lists the volumes that keep a template from being deleted.
type InUseError struct {
	Template ID
	Zone     ZoneID // zero for every zone
	Volumes  []string
}

// Error names the template, the zone and the volumes in the way.
func (e *InUseError) Error() string {
	where := "any zone"
	if e.Zone != 0 {
		where = fmt.Sprintf("zone %d", e.Zone)
	}
	return fmt.Sprintf("template: template %d is used in %s by %d volume(s): %s; delete them first or force", e.Template, where, len(e.Volumes), strings.Join(e.Volumes, ", "))
}

// Unwrap returns ErrInUse.
func (e *InUseError) Unwrap() error { return ErrInUse }

// TransitionError is a store ref update whose state change the state
// machine does not allow.
type TransitionError struct {
	Template ID
	Store    StoreID
	From, To DownloadState
}

// Error names the store, the template, both states and the states
// allowed from From.
func (e *TransitionError) Error() string {
	return fmt.Sprintf("template: store %d of template %d cannot go from %s to %s (allowed: %s)",
		e.Store, e.Template, e.From, e.To, strings.Join(stateNames(Next(e.From)), ", "))
}

// Unwrap returns ErrTransition.
func (e *TransitionError) Unwrap() error { return ErrTransition }

// ConflictError is an update based on a version that is no longer current.
type ConflictError struct {
	Template      ID
	Store         StoreID
	Have, Current int64
}

// Error names the store, the template and both versions.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("template: store %d of template %d was updated meanwhile (version %d, now %d); read it again",
		e.Store, e.Template, e.Have, e.Current)
}

// Unwrap returns ErrConflict.
func (e *ConflictError) Unwrap() error { return ErrConflict }

package template

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Memory is a Repository that keeps its records in memory: for tests,
// examples and single-process tools. It follows the contract the
// conformance suite in templatetest checks, as the SQL repositories do.
//
// Memory is safe for concurrent use: every call holds one mutex, so each is
// atomic, and concurrent zone deletions of one template soft-delete it
// exactly once. Values it returns are copies; changing them, or the maps
// and slices passed in, never changes the records.
//
// IDs start at 1 and go up; a template registered without a UUID gets a
// random (version 4) one. A removed (soft-deleted) template is found only
// by Get, GetByUUID and List with IncludeRemoved; every other method
// reports ErrNotFound for it. After Close every call fails.
//
// The zero value is an empty repository ready to use.
type Memory struct {
	mu        sync.Mutex
	closed    bool
	lastID    ID
	order     []ID // every template's ID, ascending, for List
	templates map[ID]*memTemplate
	uuids     map[string]ID
}

// memTemplate is one template and what hangs off it.
type memTemplate struct {
	t      Template // Details non-nil and Zones ascending while active
	refs   map[StoreID]StoreRef
	usages map[Usage]struct{}
}

var _ Repository = (*Memory)(nil)

// errClosed is what every call of a closed Memory returns.
var errClosed = errors.New("template: memory repository is closed; make a new one with NewMemory")

// NewMemory returns an empty in-memory repository.
func NewMemory() *Memory { return &Memory{} }

// begin checks ctx and locks m; on success the caller must unlock it.
func (m *Memory) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errClosed
	}
	if m.templates == nil {
		m.templates = make(map[ID]*memTemplate)
		m.uuids = make(map[string]ID)
	}
	return nil
}

// now is the time records are stamped with: UTC without a monotonic
// reading, as a database would give it back.
func now() time.Time { return time.Now().UTC().Round(0) }

func notFound(id ID) error { return fmt.Errorf("%w: template %d", ErrNotFound, id) }

// find returns template id, active or removed.
func (m *Memory) find(id ID, o GetOptions) (*memTemplate, error) {
	mt := m.templates[id]
	if mt == nil || (!mt.t.Removed.IsZero() && !o.IncludeRemoved) {
		return nil, notFound(id)
	}
	return mt, nil
}

// active returns template id unless it is unknown or removed.
func (m *Memory) active(id ID) (*memTemplate, error) { return m.find(id, GetOptions{}) }

func (mt *memTemplate) offers(zone ZoneID) bool {
	_, ok := slices.BinarySearch(mt.t.Zones, zone)
	return ok
}

func (mt *memTemplate) requireZone(zone ZoneID) error {
	if !mt.offers(zone) {
		return fmt.Errorf("%w: zone %d does not offer template %d", ErrNotFound, zone, mt.t.ID)
	}
	return nil
}

// clone returns t with maps and slices of its own.
func (t Template) clone() Template {
	t.Details = maps.Clone(t.Details)
	t.Zones = slices.Clone(t.Zones)
	return t
}

// Register records t as offered in zones. Duplicate zones count once.
func (m *Memory) Register(ctx context.Context, n NewTemplate, zones ...ZoneID) (Template, error) {
	if err := n.Validate(); err != nil {
		return Template{}, err
	}
	zs, err := ZoneSet(zones)
	if err != nil {
		return Template{}, err
	}
	if err := m.begin(ctx); err != nil {
		return Template{}, err
	}
	defer m.mu.Unlock()
	uuid := n.UUID
	if uuid == "" {
		for uuid = NewUUID(); m.uuids[uuid] != 0; uuid = NewUUID() {
		}
	} else if other := m.uuids[uuid]; other != 0 {
		return Template{}, fmt.Errorf("%w: UUID %s is already used by template %d", ErrConflict, uuid, other)
	}
	m.lastID++
	t := n.Record(zs, now())
	t.ID, t.UUID = m.lastID, uuid
	mt := &memTemplate{
		t:      t,
		refs:   map[StoreID]StoreRef{},
		usages: map[Usage]struct{}{},
	}
	m.templates[mt.t.ID] = mt
	m.uuids[uuid] = mt.t.ID
	m.order = append(m.order, mt.t.ID)
	return mt.t.clone(), nil
}

// CopyToZone offers template id in zone too.
func (m *Memory) CopyToZone(ctx context.Context, id ID, zone ZoneID) error {
	if zone <= 0 {
		return fmt.Errorf("%w: zone ID %d; zone IDs start at 1", ErrInvalid, zone)
	}
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	mt, err := m.active(id)
	if err != nil {
		return err
	}
	if i, ok := slices.BinarySearch(mt.t.Zones, zone); !ok {
		mt.t.Zones = slices.Insert(mt.t.Zones, i, zone)
	}
	return nil
}

// Get returns template id; a removed one only with IncludeRemoved.
func (m *Memory) Get(ctx context.Context, id ID, opts ...GetOption) (Template, error) {
	if err := m.begin(ctx); err != nil {
		return Template{}, err
	}
	defer m.mu.Unlock()
	mt, err := m.find(id, ApplyGetOptions(opts))
	if err != nil {
		return Template{}, err
	}
	return mt.t.clone(), nil
}

// GetByUUID returns the template with uuid; a removed one only with
// IncludeRemoved.
func (m *Memory) GetByUUID(ctx context.Context, uuid string, opts ...GetOption) (Template, error) {
	if err := m.begin(ctx); err != nil {
		return Template{}, err
	}
	defer m.mu.Unlock()
	id := m.uuids[uuid]
	if id == 0 {
		return Template{}, fmt.Errorf("%w: template with UUID %q", ErrNotFound, uuid)
	}
	mt, err := m.find(id, ApplyGetOptions(opts))
	if err != nil {
		return Template{}, fmt.Errorf("%w: template with UUID %q", ErrNotFound, uuid)
	}
	return mt.t.clone(), nil
}

// TemplateSource returns the URL and checksum of the active template with
// uuid; found is false, with a nil error, for an unknown UUID or a removed
// template. See [Getter].
func (m *Memory) TemplateSource(ctx context.Context, uuid string) (url, checksum string, found bool, err error) {
	return Source(ctx, m, uuid)
}

// listQuery is a checked ListOptions.
type listQuery struct {
	ListOptions
	name  string // lower case
	limit int
}

func checkList(o ListOptions) (listQuery, error) {
	q := listQuery{ListOptions: o, name: strings.ToLower(o.Name), limit: o.Limit}
	switch {
	case o.Limit < 0:
		return q, fmt.Errorf("%w: list limit %d; use 0 for the default of %d", ErrInvalid, o.Limit, DefaultLimit)
	case o.Limit == 0:
		q.limit = DefaultLimit
	case o.Limit > MaxLimit:
		q.limit = MaxLimit
	}
	if o.After < 0 {
		return q, fmt.Errorf("%w: list after ID %d; use 0 for the first page", ErrInvalid, o.After)
	}
	if o.Format != "" {
		f, err := ParseFormat(string(o.Format))
		if err != nil {
			return q, err
		}
		q.Format = f
	}
	if o.Type != "" {
		t, err := ParseType(string(o.Type))
		if err != nil {
			return q, err
		}
		q.Type = t
	}
	return q, nil
}

func (q *listQuery) match(t *Template) bool {
	return (q.IncludeRemoved || t.Removed.IsZero()) &&
		(q.Zone == 0 || slices.Contains(t.Zones, q.Zone)) &&
		(q.name == "" || strings.Contains(strings.ToLower(t.Name), q.name)) &&
		(q.Format == "" || t.Format == q.Format) &&
		(q.Type == "" || t.Type == q.Type) &&
		(q.DirectDownload == nil || t.DirectDownload == *q.DirectDownload)
}

// List returns the templates matching o with IDs above o.After, ascending,
// at most o.Limit of them (0: DefaultLimit; above MaxLimit: MaxLimit). The
// Name filter folds case as strings.ToLower does; Format and Type may be in
// any case. Page.Next is the ID of the page's last template when more
// templates match, zero otherwise. A negative Limit or After, or an unknown
// Format or Type, is ErrInvalid.
func (m *Memory) List(ctx context.Context, o ListOptions) (Page, error) {
	q, err := checkList(o)
	if err != nil {
		return Page{}, err
	}
	if err := m.begin(ctx); err != nil {
		return Page{}, err
	}
	defer m.mu.Unlock()
	page := Page{Templates: []Template{}}
	start, found := slices.BinarySearch(m.order, o.After)
	if found {
		start++
	}
	for _, id := range m.order[start:] {
		mt := m.templates[id]
		if !q.match(&mt.t) {
			continue
		}
		if len(page.Templates) == q.limit {
			page.Next = page.Templates[len(page.Templates)-1].ID
			break
		}
		page.Templates = append(page.Templates, mt.t.clone())
	}
	return page, nil
}

// volumes returns the volumes using mt in zone (every zone for zero),
// sorted, each once.
func (mt *memTemplate) volumes(zone ZoneID) []string {
	var vols []string
	for u := range mt.usages {
		if zone == 0 || u.Zone == zone {
			vols = append(vols, u.Volume)
		}
	}
	slices.Sort(vols)
	return slices.Compact(vols)
}

// remove soft-deletes mt with its zone refs, store refs, usages and
// details.
func (mt *memTemplate) remove() {
	mt.t.Removed = now()
	mt.t.Details = nil
	mt.t.Zones = nil
	mt.refs = nil
	mt.usages = nil
}

// DeleteFromZone removes zone's ref of template id, the store refs in that
// zone and, with o.Force, the usages in that zone; when no zone is left it
// soft-deletes the template and removes its details. All of it happens at
// once.
func (m *Memory) DeleteFromZone(ctx context.Context, id ID, zone ZoneID, o DeleteOptions) (DeleteResult, error) {
	if err := m.begin(ctx); err != nil {
		return DeleteResult{}, err
	}
	defer m.mu.Unlock()
	mt, err := m.active(id)
	if err != nil {
		return DeleteResult{}, err
	}
	if err := mt.requireZone(zone); err != nil {
		return DeleteResult{}, err
	}
	if vols := mt.volumes(zone); len(vols) > 0 && !o.Force {
		return DeleteResult{}, &InUseError{Template: id, Zone: zone, Volumes: vols}
	}
	if len(mt.t.Zones) == 1 {
		mt.remove()
		return DeleteResult{Removed: true}, nil
	}
	maps.DeleteFunc(mt.usages, func(u Usage, _ struct{}) bool { return u.Zone == zone })
	maps.DeleteFunc(mt.refs, func(_ StoreID, r StoreRef) bool { return r.Zone == zone })
	mt.t.Zones = slices.DeleteFunc(mt.t.Zones, func(z ZoneID) bool { return z == zone })
	return DeleteResult{}, nil
}

// DeleteEverywhere soft-deletes template id with everything that hangs off
// it; ErrNotFound when it is unknown or already removed.
func (m *Memory) DeleteEverywhere(ctx context.Context, id ID, o DeleteOptions) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	mt, err := m.active(id)
	if err != nil {
		return err
	}
	if vols := mt.volumes(0); len(vols) > 0 && !o.Force {
		return &InUseError{Template: id, Volumes: vols}
	}
	mt.remove()
	return nil
}

// Details returns the details of template id (an empty map when it has
// none); ErrNotFound for a removed template.
func (m *Memory) Details(ctx context.Context, id ID) (map[string]string, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	mt, err := m.active(id)
	if err != nil {
		return nil, err
	}
	return maps.Clone(mt.t.Details), nil
}

// SetDetails adds or replaces the given keys of template id.
func (m *Memory) SetDetails(ctx context.Context, id ID, details map[string]string) error {
	for k := range details {
		if err := ValidDetailKey(k); err != nil {
			return err
		}
	}
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	mt, err := m.active(id)
	if err != nil {
		return err
	}
	maps.Copy(mt.t.Details, details)
	return nil
}

// RemoveDetail removes key from the details of template id.
func (m *Memory) RemoveDetail(ctx context.Context, id ID, key string) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	mt, err := m.active(id)
	if err != nil {
		return err
	}
	if _, ok := mt.t.Details[key]; !ok {
		return fmt.Errorf("%w: template %d has no detail %q", ErrNotFound, id, key)
	}
	delete(mt.t.Details, key)
	return nil
}

// CreateStoreRef adds ref, with Version 1, in state NotDownloaded when
// ref.State is empty. ref.Kind must be ImageStore or PrimaryPool, ref.Store
// at least 1, the state one of ValidInitial, the progress 0 to 100 and the
// sizes not negative: otherwise ErrInvalid. The other fields are stored as
// given.
func (m *Memory) CreateStoreRef(ctx context.Context, ref StoreRef) (StoreRef, error) {
	if ref.State == "" {
		ref.State = NotDownloaded
	}
	if err := checkNewRef(ref); err != nil {
		return StoreRef{}, err
	}
	if err := m.begin(ctx); err != nil {
		return StoreRef{}, err
	}
	defer m.mu.Unlock()
	mt, err := m.active(ref.Template)
	if err != nil {
		return StoreRef{}, err
	}
	if err := mt.requireZone(ref.Zone); err != nil {
		return StoreRef{}, err
	}
	if old, ok := mt.refs[ref.Store]; ok {
		return StoreRef{}, fmt.Errorf("%w: store %d already has a ref of template %d (in zone %d)", ErrConflict, ref.Store, ref.Template, old.Zone)
	}
	ref.Version = 1
	ref.Updated = now()
	mt.refs[ref.Store] = ref
	return ref, nil
}

func checkNewRef(ref StoreRef) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: store ref: "+format, append([]any{ErrInvalid}, args...)...)
	}
	switch {
	case ref.Store <= 0:
		return bad("store ID %d; store IDs start at 1", ref.Store)
	case ref.Kind != ImageStore && ref.Kind != PrimaryPool:
		return bad("kind %q; want %q or %q", ref.Kind, ImageStore, PrimaryPool)
	case !ValidInitial(ref.State):
		return bad("a ref cannot start in state %s; start it in %s or %s", ref.State, NotDownloaded, Bypassed)
	case ref.Progress < 0 || ref.Progress > 100:
		return bad("progress %d is not a percentage", ref.Progress)
	case ref.Size < 0 || ref.PhysicalSize < 0:
		return bad("negative size")
	}
	return nil
}

// UpdateStoreRef replaces the state, progress, error, install path and
// sizes of the ref of template id on store with those of u, if the ref is
// at version (else a *ConflictError) and CheckUpdate allows u.
func (m *Memory) UpdateStoreRef(ctx context.Context, id ID, store StoreID, version int64, u StoreUpdate) (StoreRef, error) {
	if err := m.begin(ctx); err != nil {
		return StoreRef{}, err
	}
	defer m.mu.Unlock()
	mt, ref, err := m.ref(id, store)
	if err != nil {
		return StoreRef{}, err
	}
	if ref.Version != version {
		return StoreRef{}, &ConflictError{Template: id, Store: store, Have: version, Current: ref.Version}
	}
	if err := CheckUpdate(ref, u); err != nil {
		return StoreRef{}, err
	}
	ref.State = u.State
	ref.Progress = u.Progress
	ref.Error = u.Error
	ref.InstallPath = u.InstallPath
	ref.Size = u.Size
	ref.PhysicalSize = u.PhysicalSize
	ref.Version++
	ref.Updated = now()
	mt.refs[store] = ref
	return ref, nil
}

// ref finds the ref of active template id on store; m.mu is held.
func (m *Memory) ref(id ID, store StoreID) (*memTemplate, StoreRef, error) {
	mt, err := m.active(id)
	if err != nil {
		return nil, StoreRef{}, err
	}
	ref, ok := mt.refs[store]
	if !ok {
		return nil, StoreRef{}, fmt.Errorf("%w: store %d has no ref of template %d", ErrNotFound, store, id)
	}
	return mt, ref, nil
}

// StoreRef returns the ref of template id on store.
func (m *Memory) StoreRef(ctx context.Context, id ID, store StoreID) (StoreRef, error) {
	if err := m.begin(ctx); err != nil {
		return StoreRef{}, err
	}
	defer m.mu.Unlock()
	_, ref, err := m.ref(id, store)
	return ref, err
}

// StoreRefs returns the refs of template id, by ascending store ID.
func (m *Memory) StoreRefs(ctx context.Context, id ID) ([]StoreRef, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	mt, err := m.active(id)
	if err != nil {
		return nil, err
	}
	refs := slices.Collect(maps.Values(mt.refs))
	slices.SortFunc(refs, func(a, b StoreRef) int { return cmp.Compare(a.Store, b.Store) })
	return refs, nil
}

// AddUsage records that u.Volume uses template u.Template in u.Zone, which
// must offer it. Recording a usage twice is not an error.
func (m *Memory) AddUsage(ctx context.Context, u Usage) error {
	if u.Volume == "" {
		return fmt.Errorf("%w: usage of template %d names no volume", ErrInvalid, u.Template)
	}
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	mt, err := m.active(u.Template)
	if err != nil {
		return err
	}
	if err := mt.requireZone(u.Zone); err != nil {
		return err
	}
	mt.usages[u] = struct{}{}
	return nil
}

// RemoveUsage removes a usage; ErrNotFound when it is not recorded.
func (m *Memory) RemoveUsage(ctx context.Context, u Usage) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	mt, err := m.active(u.Template)
	if err != nil {
		return err
	}
	if _, ok := mt.usages[u]; !ok {
		return fmt.Errorf("%w: volume %q does not use template %d in zone %d", ErrNotFound, u.Volume, u.Template, u.Zone)
	}
	delete(mt.usages, u)
	return nil
}

// Usages returns the usages of template id, by zone, then volume.
func (m *Memory) Usages(ctx context.Context, id ID) ([]Usage, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	mt, err := m.active(id)
	if err != nil {
		return nil, err
	}
	us := slices.Collect(maps.Keys(mt.usages))
	slices.SortFunc(us, func(a, b Usage) int {
		return cmp.Or(cmp.Compare(a.Zone, b.Zone), strings.Compare(a.Volume, b.Volume))
	})
	return us, nil
}

// Close drops the records; every later call fails. Closing twice is not
// an error.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.templates, m.uuids, m.order = nil, nil, nil
	return nil
}

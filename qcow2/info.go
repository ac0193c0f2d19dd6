package qcow2

import (
	"fmt"
	"syscall"
)

// Info is what `qemu-img info --output=json` (QEMU 7.2) reports for a qcow2
// image, with the same JSON keys and the same rules for which keys appear.
type Info struct {
	VirtualSize           int64          `json:"virtual-size"`
	Filename              string         `json:"filename"`
	ClusterSize           int64          `json:"cluster-size"`
	Format                string         `json:"format"`
	ActualSize            *int64         `json:"actual-size,omitempty"`
	Encrypted             bool           `json:"encrypted,omitempty"`
	DirtyFlag             bool           `json:"dirty-flag"`
	BackingFilename       string         `json:"backing-filename,omitempty"`
	FullBackingFilename   string         `json:"full-backing-filename,omitempty"`
	BackingFilenameFormat string         `json:"backing-filename-format,omitempty"`
	Snapshots             []SnapshotInfo `json:"snapshots,omitempty"`
	FormatSpecific        FormatSpecific `json:"format-specific"`
}

// FormatSpecific is the "format-specific" object of qemu-img info.
type FormatSpecific struct {
	Type string        `json:"type"` // always "qcow2"
	Data SpecificQcow2 `json:"data"`
}

// SpecificQcow2 is qemu-img info's "format-specific"."data" for qcow2.
// Version 2 images report only compat, compression-type and refcount-bits.
type SpecificQcow2 struct {
	Compat          string `json:"compat"`
	DataFile        string `json:"data-file,omitempty"`
	DataFileRaw     *bool  `json:"data-file-raw,omitempty"`
	CompressionType string `json:"compression-type"`
	LazyRefcounts   *bool  `json:"lazy-refcounts,omitempty"`
	RefcountBits    int    `json:"refcount-bits"`
	Corrupt         *bool  `json:"corrupt,omitempty"`
	ExtendedL2      *bool  `json:"extended-l2,omitempty"`
	// Encrypt is set for AES-encrypted images. (For LUKS, qemu-img also
	// reports the LUKS header's parameters, which InfoFile does not read.)
	Encrypt *EncryptInfo `json:"encrypt,omitempty"`
}

// EncryptInfo is qemu-img info's "encrypt" object.
type EncryptInfo struct {
	Format string `json:"format"` // "aes"
}

// SnapshotInfo is one entry of qemu-img info's "snapshots" list.
type SnapshotInfo struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	VMStateSize uint64 `json:"vm-state-size"`
	DateSec     uint32 `json:"date-sec"`
	DateNsec    uint32 `json:"date-nsec"`
	VMClockSec  uint64 `json:"vm-clock-sec"`
	VMClockNsec uint64 `json:"vm-clock-nsec"`
	ICount      *int64 `json:"icount,omitempty"`
}

// Info reports img as qemu-img info does for an image opened as filename.
// It leaves ActualSize and Snapshots empty: they need the file, see
// [InfoFile].
func (img *Image) Info(filename string) Info {
	in := Info{
		VirtualSize: int64(img.Size &^ 511),
		Filename:    filename,
		ClusterSize: img.ClusterSize(),
		Format:      "qcow2",
		Encrypted:   img.CryptMethod != CryptNone,
		DirtyFlag:   img.IncompatibleFeatures&IncompatDirty != 0,
		FormatSpecific: FormatSpecific{Type: "qcow2", Data: SpecificQcow2{
			Compat:          img.Compat(),
			CompressionType: img.CompressionName(),
			RefcountBits:    img.RefcountBits(),
		}},
	}
	if img.BackingFile != "" {
		in.BackingFilename = img.BackingFile
		in.FullBackingFilename = ResolveBacking(filename, img.BackingFile)
		in.BackingFilenameFormat = img.BackingFormat
	}
	if img.Version >= 3 {
		d := &in.FormatSpecific.Data
		d.LazyRefcounts = ptr(img.CompatibleFeatures&CompatLazyRefcounts != 0)
		d.Corrupt = ptr(img.IncompatibleFeatures&IncompatCorrupt != 0)
		d.ExtendedL2 = ptr(img.ExtendedL2())
		if img.DataFile != "" {
			d.DataFile = img.DataFile
		}
		if img.IncompatibleFeatures&IncompatDataFile != 0 {
			d.DataFileRaw = ptr(img.AutoclearFeatures&AutoclearDataFileRaw != 0)
		}
	}
	return in
}

func ptr[T any](v T) *T { return &v }

// InfoFile inspects the image at path and reports it as `qemu-img info
// --output=json path` does, including the allocated size on disk and the
// internal snapshots. It never opens the backing file.
func InfoFile(path string) (*Info, error) {
	f, img, err := openImage(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	in := img.Info(path)
	if fi, err := f.Stat(); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			in.ActualSize = ptr(st.Blocks * 512)
		}
	}
	// Like qemu-img info, read what the file holds and count entries past
	// its end as empty ones (ReadSnapshots refuses such a table).
	t, err := readSnapshotTable(f, img, readerSize(f), false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, s := range t.entries {
		si := SnapshotInfo{
			ID:          s.ID,
			Name:        s.Name,
			VMStateSize: s.VMStateSize,
			DateSec:     s.DateSec,
			DateNsec:    s.DateNsec,
			VMClockSec:  s.VMClockNsec / 1e9,
			VMClockNsec: s.VMClockNsec % 1e9,
		}
		if s.ICount != -1 {
			si.ICount = ptr(s.ICount)
		}
		in.Snapshots = append(in.Snapshots, si)
	}
	for range t.zeros {
		in.Snapshots = append(in.Snapshots, SnapshotInfo{})
	}
	if img.CryptMethod == CryptAES {
		in.FormatSpecific.Data.Encrypt = &EncryptInfo{Format: "aes"}
	}
	return &in, nil
}

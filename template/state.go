package template

import (
	"fmt"
	"slices"
)

// DownloadState is the state of a template's copy on a store (CloudStack's
// download_state).
type DownloadState string

// The download states.
const (
	NotDownloaded      DownloadState = "NOT_DOWNLOADED"
	DownloadInProgress DownloadState = "DOWNLOAD_IN_PROGRESS"
	Downloaded         DownloadState = "DOWNLOADED"
	DownloadError      DownloadState = "DOWNLOAD_ERROR"
	Abandoned          DownloadState = "ABANDONED"
	// Bypassed marks a direct-download template that no image store
	// holds: it goes straight to primary storage when a VM needs it.
	Bypassed DownloadState = "BYPASSED"
)

// transitions is the state machine of store refs. A state not listed as a
// key has no way out.
var transitions = map[DownloadState][]DownloadState{
	NotDownloaded: {DownloadInProgress, DownloadError, Abandoned},
	// In progress to in progress is a progress report.
	DownloadInProgress: {DownloadInProgress, Downloaded, DownloadError, Abandoned},
	// A failed download may be tried again or given up.
	DownloadError: {NotDownloaded, DownloadInProgress, Abandoned},
	// A copy evicted from a pool is downloaded again when needed.
	Downloaded: {NotDownloaded},
	Abandoned:  {NotDownloaded},
	Bypassed:   {DownloadInProgress, NotDownloaded},
}

// initial are the states a store ref may be created in.
var initial = []DownloadState{NotDownloaded, Bypassed}

// ParseDownloadState returns the state named s (exactly, as stored).
func ParseDownloadState(s string) (DownloadState, error) {
	st := DownloadState(s)
	if _, ok := transitions[st]; ok {
		return st, nil
	}
	return "", fmt.Errorf("%w: unknown download state %q", ErrInvalid, s)
}

// CanTransition reports whether a store ref may go from one state to the
// other.
func CanTransition(from, to DownloadState) bool {
	return slices.Contains(transitions[from], to)
}

// Next returns the states a store ref in state s may go to.
func Next(s DownloadState) []DownloadState { return slices.Clone(transitions[s]) }

// ValidInitial reports whether a store ref may be created in state s.
func ValidInitial(s DownloadState) bool { return slices.Contains(initial, s) }

// CheckUpdate validates an update of ref: the transition, and the progress
// (0 to 100, and not going back while a download is in progress). It is
// what every implementation applies; errors match ErrTransition or
// ErrInvalid.
func CheckUpdate(ref StoreRef, u StoreUpdate) error {
	if !CanTransition(ref.State, u.State) {
		return &TransitionError{Template: ref.Template, Store: ref.Store, From: ref.State, To: u.State}
	}
	if u.Progress < 0 || u.Progress > 100 {
		return fmt.Errorf("%w: progress %d is not a percentage", ErrInvalid, u.Progress)
	}
	if ref.State == DownloadInProgress && u.State == DownloadInProgress && u.Progress < ref.Progress {
		return fmt.Errorf("%w: progress of store %d went back from %d%% to %d%%", ErrInvalid, ref.Store, ref.Progress, u.Progress)
	}
	if u.State == Downloaded && u.Progress != 100 {
		return fmt.Errorf("%w: a downloaded copy has progress 100, not %d", ErrInvalid, u.Progress)
	}
	if u.Size < 0 || u.PhysicalSize < 0 {
		return fmt.Errorf("%w: negative size", ErrInvalid)
	}
	return nil
}

func stateNames(ss []DownloadState) []string {
	if len(ss) == 0 {
		return []string{"none"}
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

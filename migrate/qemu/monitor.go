package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// ErrQMP is wrapped by every *QMPError: QEMU refused a command.
var ErrQMP = errors.New("qemu: command refused")

// ErrMonitor is wrapped by errors of the monitor connection itself: the
// socket could not be reached, QEMU went away, or a reply did not parse.
var ErrMonitor = errors.New("qemu: monitor connection failed")

// QMPError is QEMU's error reply to one command.
type QMPError struct {
	// Command is the QMP command QEMU refused ("blockdev-mirror").
	Command string
	// Class is QEMU's error class ("GenericError", "CommandNotFound",
	// "DeviceNotFound"). It is empty over a go-qemu qmp.SocketMonitor
	// given to NewMonitor, which keeps only the description of an error
	// reply; Dial's monitor keeps the class.
	Class string
	// Desc is QEMU's description of the error.
	Desc string
}

// Error names the command, QEMU's description and its error class.
func (e *QMPError) Error() string {
	s := "qemu: " + e.Command + ": " + e.Desc
	if e.Class != "" {
		s += " (" + e.Class + ")"
	}
	return s
}

// Unwrap returns ErrQMP.
func (e *QMPError) Unwrap() error { return ErrQMP }

// Monitor is a QMP connection to one QEMU process. It wraps a go-qemu
// qmp.Monitor: commands take their arguments as Go values marshalled with
// encoding/json and decode their return value into a Go value, and an
// error reply comes back as a *QMPError naming the command.
//
// A Monitor is safe for concurrent use: go-qemu serialises commands on
// the connection, so concurrent Execute calls run one after the other.
// Events are not delivered to callers; they only wake the executor's
// waits, which read QEMU's state with query commands, so that no event
// can be missed. Close ends the connection and its goroutine.
type Monitor struct {
	mon  qmp.Monitor
	name string

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every event
	closed  bool
	broken  bool          // a command was abandoned: replies can no longer be paired
	done    chan struct{} // closed when the event goroutine ends
}

// dialTimeout bounds one attempt to connect to a monitor socket. A QMP
// socket that accepts answers at once, so a long wait means a stuck peer.
const dialTimeout = 5 * time.Second

// Dial connects to the QMP unix socket at path and performs the
// capabilities handshake. name labels the monitor in error messages
// ("source", "destination"); empty means path. The connection implements
// go-qemu's qmp.Monitor itself rather than using its SocketMonitor; see
// the comment on socketMonitor for why.
func Dial(ctx context.Context, path, name string) (*Monitor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if name == "" {
		name = path
	}
	timeout := dialTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	sm, err := dialSocket(ctx, path, timeout)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: dial %s: %w (is QEMU running with -qmp unix:%s,server=on?)", ErrMonitor, name, path, err, path)
	}
	return NewMonitor(sm, name)
}

// NewMonitor connects m (any go-qemu qmp.Monitor, such as libvirt's RPC
// monitor) and returns a Monitor over it. name labels the monitor in
// error messages. The Monitor owns m from then on: Close disconnects it.
func NewMonitor(m qmp.Monitor, name string) (*Monitor, error) {
	if err := m.Connect(); err != nil {
		_ = m.Disconnect()
		return nil, fmt.Errorf("%w: %s: handshake: %w", ErrMonitor, name, err)
	}
	mon := &Monitor{mon: m, name: name, changed: make(chan struct{}), done: make(chan struct{})}
	events, err := m.Events(context.Background())
	if err != nil || events == nil {
		// Without events the waits fall back to polling alone.
		close(mon.done)
		return mon, nil
	}
	// go-qemu's monitors hand events over a channel from the goroutine
	// that also reads command replies, so events must be drained for as
	// long as the connection lives or commands could block.
	go mon.pump(events)
	return mon, nil
}

func (m *Monitor) pump(events <-chan qmp.Event) {
	defer close(m.done)
	for range events {
		m.mu.Lock()
		close(m.changed)
		m.changed = make(chan struct{})
		m.mu.Unlock()
	}
}

// wake returns a channel that is closed at the next event QEMU sends.
func (m *Monitor) wake() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// Name returns the name the monitor was given.
func (m *Monitor) Name() string { return m.name }

// Close disconnects from QEMU and waits for the monitor's goroutine to
// end. It does not stop QEMU. Calling it again does nothing.
func (m *Monitor) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	err := m.mon.Disconnect()
	<-m.done
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("%w: %s: disconnect: %w", ErrMonitor, m.name, err)
	}
	return nil
}

// command is a QMP command as sent on the wire.
type command struct {
	Execute   string `json:"execute"`
	Arguments any    `json:"arguments,omitempty"`
}

// Execute runs one QMP command with args (nil for none, or a value that
// marshals to a JSON object) and decodes QEMU's return value into result
// (nil to discard it). An error reply is a *QMPError. QEMU answers most
// commands at once (long work runs as jobs), but not all: blockdev-add of
// an NBD client waits for the server. When ctx ends before the reply,
// Execute returns ctx's error and the Monitor is unusable from then on
// (its connection is closed; QEMU may still be blocked in the command).
func (m *Monitor) Execute(ctx context.Context, cmd string, args, result any) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("qemu: %s: %s: %w", m.name, cmd, err)
	}
	m.mu.Lock()
	unusable := m.closed || m.broken
	m.mu.Unlock()
	if unusable {
		return fmt.Errorf("%w: %s: %s: the monitor is closed (an earlier command was abandoned when its context ended)", ErrMonitor, m.name, cmd)
	}
	b, err := json.Marshal(command{Execute: cmd, Arguments: args})
	if err != nil {
		return fmt.Errorf("qemu: %s: %s: marshal arguments: %w", m.name, cmd, err)
	}
	out, err := m.run(ctx, b)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %s: %s: %w", ErrMonitor, m.name, cmd, ctx.Err())
		}
		if _, ours := m.mon.(*socketMonitor); ours || transportError(err) {
			return fmt.Errorf("%w: %s: %s: %w", ErrMonitor, m.name, cmd, err)
		}
		// go-qemu turns an error reply into an error holding QEMU's
		// description only.
		return &QMPError{Command: cmd, Desc: err.Error()}
	}
	ret, err := parseReply(cmd, out)
	if err != nil {
		var qe *QMPError
		if errors.As(err, &qe) {
			return err
		}
		return fmt.Errorf("%w: %s: %w", ErrMonitor, m.name, err)
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(ret, result); err != nil {
		return fmt.Errorf("%w: %s: %s: decode return value: %w", ErrMonitor, m.name, cmd, err)
	}
	return nil
}

// run sends one command and waits for its reply, or for ctx. QEMU does
// not answer every command at once: blockdev-add of an NBD client
// negotiates with the server inside the command, with no timeout, so a
// peer that accepts the connection and says nothing holds the reply back
// indefinitely. When ctx ends first the connection is closed, which ends
// the wait (and makes the Monitor unusable: QEMU's reply, if it ever
// comes, can no longer be paired with its command).
func (m *Monitor) run(ctx context.Context, b []byte) ([]byte, error) {
	type reply struct {
		out []byte
		err error
	}
	ch := make(chan reply, 1)
	go func() {
		out, err := m.mon.Run(b)
		ch <- reply{out, err}
	}()
	select {
	case r := <-ch:
		return r.out, r.err
	case <-ctx.Done():
		m.mu.Lock()
		m.broken = true
		m.mu.Unlock()
		// The goroutine ends when Run returns, which closing the
		// connection makes it do; its reply is dropped.
		go m.mon.Disconnect()
		return nil, ctx.Err()
	}
}

// transportError reports whether err from go-qemu's Run is about the
// connection (or an unreadable reply) rather than QEMU's error reply.
func transportError(err error) bool {
	var (
		ne net.Error
		se *json.SyntaxError
		te *json.UnmarshalTypeError
	)
	return errors.As(err, &ne) || errors.As(err, &se) || errors.As(err, &te) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// reply is a QMP reply: either a return value or an error.
type reply struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
}

// parseReply parses QEMU's reply to cmd and returns its return value; an
// error reply becomes a *QMPError. A reply that is neither is an error
// naming the command.
func parseReply(cmd string, raw []byte) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, fmt.Errorf("%s: empty reply", cmd)
	}
	var r reply
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%s: reply is not a QMP reply: %w", cmd, err)
	}
	if r.Error != nil {
		desc := r.Error.Desc
		if desc == "" {
			desc = "QEMU gave no description"
		}
		return nil, &QMPError{Command: cmd, Class: r.Error.Class, Desc: desc}
	}
	if len(r.Return) == 0 || bytes.Equal(r.Return, []byte("null")) {
		return nil, fmt.Errorf("%s: reply has neither \"return\" nor \"error\"", cmd)
	}
	return r.Return, nil
}

// pollInterval is how often the waits re-read QEMU's state when no event
// arrives: QEMU emits no event for some changes (migration progress
// without the "events" capability), and events only wake the waits.
const pollInterval = 50 * time.Millisecond

// waitUntil calls check until it reports done or fails, re-checking at
// every event of m and at least every pollInterval. It returns ctx's
// error if ctx ends first.
func waitUntil(ctx context.Context, m *Monitor, check func() (bool, error)) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		wake := m.wake()
		done, err := check()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-t.C:
		}
	}
}

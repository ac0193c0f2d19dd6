package qemu

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// socketMonitor is a go-qemu qmp.Monitor over a QMP socket, used by Dial
// in place of go-qemu's own SocketMonitor, which (at the version this
// module requires) hands the caller bufio.Scanner's internal buffer as
// the reply: the next line QEMU sends, such as an event, overwrites the
// reply while it is being decoded (go-qemu issue #226, a data race the
// race detector reports here). It also takes an event that arrives during
// the handshake for the handshake's reply (go-qemu pull request #210), and
// keeps only the description of an error reply. This one copies each
// line, skips events while waiting for a reply, and returns error replies
// whole, so that Monitor reports their class.
type socketMonitor struct {
	c       net.Conn
	timeout time.Duration

	mu sync.Mutex // serialises Run: one reply per command, in order

	replies chan []byte
	events  chan qmp.Event
	closing chan struct{}
	done    chan struct{} // closed when the reader ends
	readErr error         // why the reader ended; set before done closes
	started atomic.Bool   // the reader runs (Connect succeeded)
	once    sync.Once
}

var _ qmp.Monitor = (*socketMonitor)(nil)

// maxLine bounds one QMP line. Replies this package reads are a few KiB;
// query-qmp-schema, the largest QEMU has, is about 200 KiB.
const maxLine = 4 << 20

func dialSocket(ctx context.Context, path string, timeout time.Duration) (*socketMonitor, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	return &socketMonitor{
		c:       c,
		timeout: timeout,
		replies: make(chan []byte),
		events:  make(chan qmp.Event, 64),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}, nil
}

// Connect reads QEMU's greeting and leaves capabilities negotiation mode.
func (m *socketMonitor) Connect() error {
	// The handshake runs before the reader starts, bounded by the dial
	// timeout so that a peer that is not QEMU cannot hang it.
	if err := m.c.SetDeadline(time.Now().Add(m.timeout)); err != nil {
		return err
	}
	sc := bufio.NewScanner(m.c)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var greeting struct {
		QMP *json.RawMessage `json:"QMP"`
	}
	if !sc.Scan() {
		return fmt.Errorf("no QMP greeting: %w", scanErr(sc))
	}
	if err := json.Unmarshal(sc.Bytes(), &greeting); err != nil || greeting.QMP == nil {
		return fmt.Errorf("not a QMP greeting: %.200q", sc.Bytes())
	}
	if _, err := m.c.Write([]byte(`{"execute":"qmp_capabilities"}` + "\n")); err != nil {
		return err
	}
	for {
		if !sc.Scan() {
			return fmt.Errorf("no reply to qmp_capabilities: %w", scanErr(sc))
		}
		if isEvent(sc.Bytes()) {
			continue
		}
		if _, err := parseReply("qmp_capabilities", sc.Bytes()); err != nil {
			return err
		}
		break
	}
	if err := m.c.SetDeadline(time.Time{}); err != nil {
		return err
	}
	m.started.Store(true)
	go m.read(sc)
	return nil
}

func scanErr(sc *bufio.Scanner) error {
	if err := sc.Err(); err != nil {
		return err
	}
	return io.EOF
}

// isEvent reports whether a QMP line is an asynchronous event.
func isEvent(line []byte) bool {
	var probe struct {
		Event *string `json:"event"`
	}
	return json.Unmarshal(line, &probe) == nil && probe.Event != nil
}

func (m *socketMonitor) read(sc *bufio.Scanner) {
	defer close(m.done)
	defer close(m.events)
	for sc.Scan() {
		line := bytes.Clone(sc.Bytes())
		if isEvent(line) {
			var e qmp.Event
			if json.Unmarshal(line, &e) == nil {
				// Events only wake waits, which also poll: dropping one
				// when nobody keeps up costs latency, never correctness.
				select {
				case m.events <- e:
				default:
				}
			}
			continue
		}
		select {
		case m.replies <- line:
		case <-m.closing:
			m.readErr = net.ErrClosed
			return
		}
	}
	m.readErr = scanErr(sc)
}

// Run sends one command and returns QEMU's reply line as it is, an error
// reply included; the error is about the connection only.
func (m *socketMonitor) Run(cmd []byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.done:
		return nil, fmt.Errorf("connection closed: %w", m.readErr)
	default:
	}
	if _, err := m.c.Write(append(bytes.TrimSpace(cmd), '\n')); err != nil {
		return nil, err
	}
	select {
	case line := <-m.replies:
		return line, nil
	case <-m.done:
		return nil, fmt.Errorf("connection closed before the reply: %w", m.readErr)
	}
}

// Events returns the event channel, closed when the connection ends.
func (m *socketMonitor) Events(context.Context) (<-chan qmp.Event, error) {
	return m.events, nil
}

// Disconnect closes the connection and waits for the reader to end.
func (m *socketMonitor) Disconnect() error {
	var err error
	m.once.Do(func() {
		close(m.closing)
		err = m.c.Close()
	})
	// A Connect that failed started no reader to wait for.
	if m.started.Load() {
		<-m.done
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Callback delivery: a bounded queue, so that a slow or absent
// orchestrator never holds up a download, and a few retries per event.
const (
	callbackQueue    = 256
	callbackAttempts = 3
	callbackBackoff  = 200 * time.Millisecond
)

// notifier POSTs events to the callback URL, in order, from one goroutine.
type notifier struct {
	url    string
	token  string
	client *http.Client
	log    *slog.Logger
	queue  chan Event
	stop   chan struct{} // closed when the sender should give up waiting
	done   chan struct{} // closed when the sender has ended

	mu      sync.Mutex
	closed  bool
	dropped int

	// failing is set while the callback fails: events are then tried
	// once each, so that a dead orchestrator costs little, until one
	// gets through. Only the sender goroutine uses it.
	failing bool
}

func newNotifier(rawURL, token string, client *http.Client, log *slog.Logger) (*notifier, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("agent: callback %q: give an http or https URL", rawURL)
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	n := &notifier{
		url: rawURL, token: token, client: client, log: log,
		queue: make(chan Event, callbackQueue),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go n.run()
	return n, nil
}

// send queues e without waiting; when the queue is full the event is
// dropped (progress events come again; the job's final state can always
// be read with GET /v1/downloads/{id}).
func (n *notifier) send(e Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	select {
	case n.queue <- e:
	default:
		n.dropped++
		n.log.Warn("callback queue full; event dropped", slog.String("type", e.Type), slog.String("job", e.Job.ID))
	}
}

func (n *notifier) run() {
	defer close(n.done)
	for e := range n.queue {
		n.deliver(e)
	}
}

// deliver POSTs one event, retrying a failed attempt a few times.
func (n *notifier) deliver(e Event) {
	body, err := json.Marshal(e)
	if err != nil {
		return
	}
	attempts := callbackAttempts
	n.mu.Lock()
	if n.failing || n.closed {
		attempts = 1 // no waiting once the agent is closing
	}
	n.mu.Unlock()
	delay := callbackBackoff
	for attempt := 1; ; attempt++ {
		err := n.post(body)
		if err == nil {
			n.failing = false
			return
		}
		if attempt >= attempts {
			n.failing = true
			n.log.Warn("callback failed; event dropped", slog.String("type", e.Type), slog.String("job", e.Job.ID), slog.String("error", err.Error()))
			return
		}
		select {
		case <-time.After(delay):
		case <-n.stop:
			return
		}
		delay *= 2
	}
}

func (n *notifier) post(body []byte) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+n.token)
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("callback answered %s", resp.Status)
	}
	return nil
}

// close takes no more events and delivers the queued ones until ctx ends.
func (n *notifier) close(ctx context.Context) error {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.queue)
	}
	n.mu.Unlock()
	select {
	case <-n.done:
		return nil
	case <-ctx.Done():
		n.mu.Lock()
		select {
		case <-n.stop:
		default:
			close(n.stop)
		}
		n.mu.Unlock()
		<-n.done
		return ctx.Err()
	}
}

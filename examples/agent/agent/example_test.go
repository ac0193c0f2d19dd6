package agent_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/examples/agent/agent"
)

// An agent served with net/http, refusing a request without its token and
// a download request whose name would leave the pool.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "agent-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := certstore.OpenFileStore(filepath.Join(dir, "trust.jks"), "changeit")
	if err != nil {
		log.Fatal(err)
	}
	pool := filepath.Join(dir, "pool")
	if err := os.Mkdir(pool, 0o755); err != nil {
		log.Fatal(err)
	}
	a, err := agent.New(agent.Config{Pool: pool, Token: "t0ken", TrustStore: store})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close(context.Background())
	srv := httptest.NewServer(a)
	defer srv.Close()

	call := func(method, path, token, body string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		fmt.Printf("%s %s: %d %s\n", method, path, resp.StatusCode, strings.Join(strings.Fields(string(out)), " "))
	}
	call("GET", "/v1/inventory", "", "")
	call("POST", "/v1/downloads", "t0ken", `{"url": "https://mirror.example/t.qcow2", "name": "../../etc/t.qcow2"}`)
	call("GET", "/v1/downloads", "t0ken", "")
	// Output:
	// GET /v1/inventory: 401 { "error": "missing bearer token; send Authorization: Bearer TOKEN" }
	// POST /v1/downloads: 400 { "error": "field \"name\": \"../../etc/t.qcow2\" has '/'; give a file name, not a path" }
	// GET /v1/downloads: 200 { "jobs": [] }
}

package template_test

import (
	"context"
	"sync"
	"testing"

	"github.com/directdl/directdl/template"
	"github.com/directdl/directdl/template/templatetest"
)

func TestMemoryConformance(t *testing.T) {
	templatetest.Run(t, templatetest.Factory{
		New: func(*testing.T) template.Repository { return template.NewMemory() },
	})
}

func TestMemoryZeroValue(t *testing.T) {
	var m template.Memory
	tpl, err := m.Register(t.Context(), template.NewTemplate{Name: "zero"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if tpl.ID != 1 {
		t.Errorf("first ID of a zero Memory: got %d, want 1", tpl.ID)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMemoryIDsFromOne(t *testing.T) {
	m := template.NewMemory()
	ctx := t.Context()
	for want := template.ID(1); want <= 3; want++ {
		tpl, err := m.Register(ctx, template.NewTemplate{Name: "t"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		if tpl.ID != want {
			t.Errorf("got ID %d, want %d", tpl.ID, want)
		}
	}
}

func TestMemoryClose(t *testing.T) {
	m := template.NewMemory()
	ctx := t.Context()
	tpl, err := m.Register(ctx, template.NewTemplate{Name: "t"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := m.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	_, err = m.Get(ctx, tpl.ID)
	if err == nil {
		t.Fatal("Get after Close: got no error")
	}
	t.Log(err)
}

// TestMemoryCloseWhileBusy closes a Memory while other goroutines use it:
// every call either works or fails, none races or panics.
func TestMemoryCloseWhileBusy(t *testing.T) {
	m := template.NewMemory()
	ctx := context.Background()
	tpl, err := m.Register(ctx, template.NewTemplate{Name: "t"}, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				m.Get(ctx, tpl.ID)
				m.SetDetails(ctx, tpl.ID, map[string]string{"k": "v"})
				m.List(ctx, template.ListOptions{Zone: template.ZoneID(i%2 + 1)})
			}
		}()
	}
	m.Close()
	wg.Wait()
}

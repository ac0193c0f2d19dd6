package qemu_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/digitalocean/go-qemu/qmp"
	"github.com/digitalocean/go-qemu/qmp/qmptest"

	"github.com/directdl/directdl/migrate"
	"github.com/directdl/directdl/migrate/qemu"
)

// A refused command comes back as a *QMPError naming it. The monitor here
// is go-qemu's test double, answering as QEMU would.
func ExampleQMPError() {
	fake := qmptest.NewMonitor(func(cmd qmp.Command) (any, error) {
		return map[string]any{"error": map[string]string{
			"class": "GenericError",
			"desc":  "NBD server already running",
		}}, nil
	})
	mon, err := qemu.NewMonitor(fake, "destination")
	if err != nil {
		log.Fatal(err)
	}
	defer mon.Close()

	err = mon.Execute(context.Background(), "nbd-server-start", map[string]any{
		"addr": map[string]any{"type": "inet", "data": map[string]string{"host": "127.0.0.1", "port": "10809"}},
	}, nil)
	var qe *qemu.QMPError
	if errors.As(err, &qe) {
		fmt.Println(qe.Command, qe.Class)
	}
	fmt.Println(err)
	// Output:
	// nbd-server-start GenericError
	// qemu: nbd-server-start: NBD server already running (GenericError)
}

// Migrating a VM between two QEMUs on one host: the destination is started
// waiting for the migration, with its disk prepared as the plan says.
func Example() {
	ctx := context.Background()
	src, err := qemu.Start(ctx, qemu.Config{Dir: os.TempDir(), Name: "src",
		Disks: []qemu.Disk{{Label: "vda", Path: "/var/lib/vm/src/vm.qcow2"}}})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Kill()
	dst, err := qemu.Start(ctx, qemu.Config{Dir: os.TempDir(), Name: "dst", Incoming: true,
		Disks: []qemu.Disk{{Label: "vda", Path: "/var/lib/vm/dst/vm.qcow2"}}})
	if err != nil {
		log.Fatal(err)
	}
	defer dst.Kill()

	plan := &migrate.Plan{Disks: []migrate.DiskPlan{{
		Label: "vda", VirtualSize: 64 << 20, DestinationFormat: "qcow2",
		Strategy: migrate.Linked, Sync: "top",
	}}}
	rep, err := qemu.Run(ctx, qemu.Migration{
		Plan:        plan,
		Source:      src.QMP(),
		Destination: dst.QMP(),
		NBDAddress:  "127.0.0.1:10809",
		MigrateURI:  "tcp:127.0.0.1:0",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rep.Disks[0].Bytes, "bytes copied in", rep.Duration)
}

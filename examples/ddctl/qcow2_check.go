package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/directdl/directdl/qcow2"
)

// checkOutput is qemu-img check --output=json: the result plus the file
// name and format.
type checkOutput struct {
	*qcow2.CheckResult
	Filename string `json:"filename"`
	Format   string `json:"format"`
}

// qcow2Check mirrors `qemu-img check [--output=json]`, read-only. Exit
// codes are qemu-img's: 0 clean, 2 corruptions, 3 leaks only, 1 when the
// check could not be completed.
func qcow2Check(ctx context.Context, e env, args []string) error {
	fs := newFlags("check")
	asJSON := fs.Bool("json", false, "print qemu-img check's JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	file, err := oneFile(fs)
	if err != nil {
		return err
	}
	res, err := qcow2.CheckFile(ctx, file)
	if res != nil {
		for _, p := range res.Problems {
			fmt.Fprintln(e.stderr, p.Message)
		}
		if res.ProblemsOmitted > 0 {
			fmt.Fprintf(e.stderr, "... and %d more problems\n", res.ProblemsOmitted)
		}
	}
	var failed *qcow2.CheckFailedError
	if errors.As(err, &failed) {
		return fmt.Errorf("check failed: %s (%s)", failed.Errno, failed.Detail)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		if err := writeJSON(e, checkOutput{res, file, "qcow2"}); err != nil {
			return err
		}
	} else {
		fmt.Fprint(e.stderr, res.Summary())
	}
	if code := res.ExitCode(); code != 0 {
		return &exitError{code: code}
	}
	return nil
}

//go:build linux

package doccheck

import (
	"bufio"
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// blockTimeout bounds one shell block or documented command: a README
// block builds two programs and runs them, the slowest documented command
// (go run ./bench/migrate -runs 3) migrates six real VMs.
const blockTimeout = 10 * time.Minute

// needTools fails the test under CI=true when a tool the documented
// commands use is missing, and skips it elsewhere.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is needed to run the documented commands (.ci/run installs it): %v", tool, err)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

// shellBlock is one ```sh block of a Markdown file.
type shellBlock struct {
	file string // slash-separated, relative to the module root
	line int    // of the opening fence
	text string
}

// shellBlocks returns the ```sh (or ```bash, ```shell) blocks of a
// Markdown document.
func shellBlocks(file string, md []byte) []shellBlock {
	var blocks []shellBlock
	var cur *shellBlock
	sc := bufio.NewScanner(bytes.NewReader(md))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			lang := strings.TrimSpace(strings.TrimPrefix(line, "```"))
			if lang == "sh" || lang == "bash" || lang == "shell" {
				cur = &shellBlock{file: file, line: n}
			} else {
				// Another language, or none: skip to its closing fence.
				for sc.Scan() {
					n++
					if strings.HasPrefix(sc.Text(), "```") {
						break
					}
				}
			}
		case cur != nil && strings.HasPrefix(line, "```"):
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		}
	}
	if cur != nil {
		blocks = append(blocks, *cur) // unclosed at the end: Markdown shows it all the same
	}
	return blocks
}

// ciRunLine matches a line that runs CI itself, which a test inside CI
// cannot run again: the README's second command.
var ciRunLine = regexp.MustCompile(`^\s*bash \.ci/run\s*(#.*)?$`)

// scratchCopy copies the module's files (tracked and untracked, but not
// ignored: no built binaries) into a new directory, so that documented
// commands run from a fresh tree and cannot change the real one.
func scratchCopy(t *testing.T, root string) string {
	t.Helper()
	dst := t.TempDir()
	var files []string
	if _, err := os.Stat(filepath.Join(root, ".git")); err == nil {
		cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git ls-files: %v", err)
		}
		for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
			if f != "" {
				files = append(files, f)
			}
		}
	} else {
		// A tree without git (an archive): everything but what .gitignore
		// names at the root (the binaries go build leaves there).
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			switch {
			case d.IsDir() && d.Name() == ".git":
				return filepath.SkipDir
			case d.IsDir():
				return nil
			case rel == "ddctl" || rel == "quickstart" || rel == "agent" || strings.HasSuffix(rel, ".test"):
				return nil
			}
			files = append(files, rel)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		src := filepath.Join(root, f)
		fi, err := os.Lstat(src)
		if os.IsNotExist(err) {
			continue // deleted in the work tree, not yet in the index
		}
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, f)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, to); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// nestedEnv is set for the documented commands: a command that runs the
// module's tests again (go test ./...) must not run the documented
// commands again, or each level would start the next.
const nestedEnv = "DIRECTDL_DOCCHECK_NESTED"

// runShell runs script with bash -euo pipefail in dir, in a process group
// of its own that is killed when the script ends, so that a server it
// left running cannot outlive the test. TMPDIR points into the test's
// temporary directory, so mktemp -d cleans up with it.
func runShell(t *testing.T, dir, script string) (string, error) {
	t.Helper()
	timeout := blockTimeout
	if d, ok := t.Deadline(); ok {
		// End before go test's own timeout does, which would panic
		// without killing the block's processes.
		timeout = min(timeout, time.Until(d)*9/10)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir(), nestedEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return out.String(), err
}

// tail keeps the end of a long output for a failure message.
func tail(s string) string {
	const max = 6000
	if len(s) > max {
		return "...\n" + s[len(s)-max:]
	}
	return s
}

// TestReadmeShellBlocks runs every shell block of every README in the
// module, as written, from the root of a copy of the module: what a new
// user pastes must work. The only line left out is `bash .ci/run` (this
// test runs inside it); that the script wraps the command the README says
// it does is checked instead.
func TestReadmeShellBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the documented programs")
	}
	if os.Getenv(nestedEnv) != "" {
		t.Skip("inside a documented command: not running the documented commands again")
	}
	needTools(t, "go", "bash", "git", "curl", "sha256sum")
	root := moduleRoot(t)
	var readmes []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && d.Name() == "README.md" {
			rel, _ := filepath.Rel(root, p)
			readmes = append(readmes, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var blocks []shellBlock
	for _, r := range readmes {
		blocks = append(blocks, shellBlocks(r, readFile(t, filepath.Join(root, r)))...)
	}
	if len(blocks) < 3 {
		t.Fatalf("found %d shell blocks in %v; the README's two commands, its ddctl tour and the agent's are expected", len(blocks), readmes)
	}

	readme := string(readFile(t, filepath.Join(root, "README.md")))
	if !strings.HasPrefix(readme, "# directdl\n\n```sh\ngo run ./examples/quickstart") {
		t.Error("README.md does not start with its two commands, the quickstart first")
	}
	ciRun := string(readFile(t, filepath.Join(root, ".ci", "run")))
	m := regexp.MustCompile("`\\.ci/run` wraps `([^`]+)`").FindStringSubmatch(readme)
	if m == nil {
		t.Error("README.md does not say which command `.ci/run` wraps")
	} else if !strings.Contains(ciRun, m[1]) {
		t.Errorf(".ci/run does not run %q, which README.md says it wraps", m[1])
	}

	dir := scratchCopy(t, root)
	for _, b := range blocks {
		var script strings.Builder
		skipped := 0
		for _, line := range strings.SplitAfter(b.text, "\n") {
			if ciRunLine.MatchString(strings.TrimSuffix(line, "\n")) {
				skipped++
				continue
			}
			script.WriteString(line)
		}
		if strings.Contains(script.String(), ".ci/run") {
			t.Errorf("%s:%d: runs .ci/run in a way this test does not recognise (only a line `bash .ci/run` is left out); not running it", b.file, b.line)
			continue
		}
		if skipped > 0 && !strings.Contains(ciRun, "go test") {
			t.Errorf("%s:%d: runs .ci/run, which runs no go test", b.file, b.line)
		}
		t.Run(strings.ReplaceAll(b.file, "/", "_")+":"+strconv.Itoa(b.line), func(t *testing.T) {
			out, err := runShell(t, dir, script.String())
			if err != nil {
				t.Fatalf("%s:%d: the shell block fails as written: %v\n%s", b.file, b.line, err, tail(out))
			}
		})
	}
}

// docLine is a line of a code block in a Go comment ("//\t...").
type docLine struct {
	file string // slash-separated, relative to the module root
	line int
	text string
}

// docCommands returns the code-block lines of the comments of the
// module's non-test Go files, by package directory.
func docCommands(t *testing.T, root string) map[string][]docLine {
	t.Helper()
	byDir := map[string][]docLine{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (n == "testdata" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_")) {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil && p != root {
				return filepath.SkipDir // another module: its own commands
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		sc := bufio.NewScanner(bytes.NewReader(readFile(t, p)))
		for n := 1; sc.Scan(); n++ {
			if text, ok := strings.CutPrefix(strings.TrimLeft(sc.Text(), " \t"), "//\t"); ok {
				dir := filepath.ToSlash(filepath.Dir(rel))
				byDir[dir] = append(byDir[dir], docLine{file: rel, line: n, text: strings.TrimSpace(text)})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return byDir
}

// goCommand matches the go commands a package comment tells a reader to
// type, which run from the module root.
var goCommand = regexp.MustCompile(`^go (run|test|build|vet) \./\S*( [^#]*)?(#.*)?$`)

// synopsisFlags are the flags a synopsis line names: "-name" after a
// space, "[" or "|".
var synopsisFlags = regexp.MustCompile(`(?:^|[\s\[|])(-[A-Za-z][A-Za-z0-9-]*)`)

// subcommandWord is a word of a synopsis that names a subcommand (qcow2,
// create), not a flag or a placeholder (FILE, [flags]).
var subcommandWord = regexp.MustCompile(`^[a-z][a-z0-9]*$`)

// TestPackageDocCommands checks the commands shown in package
// documentation: `go run ./...` and `go test ./...` lines are run as
// written from the root of a copy of the module; the synopsis lines of a
// command (ddctl, agent, ...: lines that start with its name) and its
// flag lines (starting with "-") may only name flags that its -h output
// lists, so a renamed or removed flag cannot stay documented.
func TestPackageDocCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the documented programs")
	}
	if os.Getenv(nestedEnv) != "" {
		t.Skip("inside a documented command: not running the documented commands again")
	}
	needTools(t, "go", "bash", "git")
	root := moduleRoot(t)
	byDir := docCommands(t, root)
	dir := scratchCopy(t, root)
	bin := t.TempDir()

	ran := map[string]bool{}
	checked := 0
	for pkgDir, lines := range byDir {
		name := pathBase(pkgDir)
		// Named by the whole directory: examples/agent and
		// examples/agent/agent would both be "agent".
		exe := filepath.Join(bin, strings.ReplaceAll(pkgDir, "/", "_"))
		var help map[string]string // -h output by subcommand path
		usage := func(t *testing.T, sub string) string {
			if help == nil {
				help = map[string]string{}
				out, err := runShell(t, dir, "go build -o "+exe+" ./"+pkgDir)
				if err != nil {
					t.Fatalf("building %s: %v\n%s", pkgDir, err, out)
				}
			}
			if h, ok := help[sub]; ok {
				return h
			}
			args := append(strings.Fields(sub), "-h")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, _ := exec.CommandContext(ctx, exe, args...).CombinedOutput() // -h exits 0 or 2
			help[sub] = string(out)
			return help[sub]
		}
		isMain := false
		for _, l := range lines {
			isMain = isMain || strings.HasPrefix(l.text, name+" ")
		}
		var subs []string // the synopsis lines' subcommands
		for _, l := range lines {
			switch {
			case goCommand.MatchString(l.text):
				cmd := strings.TrimSpace(strings.SplitN(l.text, "#", 2)[0])
				if ran[cmd] {
					continue
				}
				ran[cmd] = true
				checked++
				t.Run(l.file+":"+strconv.Itoa(l.line), func(t *testing.T) {
					if out, err := runShell(t, dir, cmd); err != nil {
						t.Fatalf("%s:%d: %q fails as written: %v\n%s", l.file, l.line, cmd, err, tail(out))
					}
				})
			case isMain && strings.HasPrefix(l.text, name+" "):
				var sub []string
				for _, w := range strings.Fields(l.text)[1:] {
					if !subcommandWord.MatchString(w) {
						break
					}
					sub = append(sub, w)
				}
				subs = append(subs, strings.Join(sub, " "))
				checked++
				h := usage(t, strings.Join(sub, " "))
				for _, f := range synopsisFlags.FindAllStringSubmatch(l.text, -1) {
					if !mentionsFlag(h, f[1]) {
						t.Errorf("%s:%d: %s names %s, which `%s %s -h` does not list:\n%s", l.file, l.line, name, f[1], name, strings.Join(sub, " "), h)
					}
				}
			}
		}
		// Flag lines belong to the command itself when no synopsis has a
		// subcommand.
		top := isMain
		for _, s := range subs {
			top = top && s == ""
		}
		for _, l := range lines {
			if !top || !strings.HasPrefix(l.text, "-") {
				continue
			}
			checked++
			h := usage(t, "")
			for _, f := range synopsisFlags.FindAllStringSubmatch(strings.SplitN(l.text, "  ", 2)[0], -1) {
				if !mentionsFlag(h, f[1]) {
					t.Errorf("%s:%d: documents flag %s, which `%s -h` does not list:\n%s", l.file, l.line, f[1], name, h)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d documented commands found; the ddctl synopsis alone has more", checked)
	}
}

// mentionsFlag reports whether help lists flag as a word.
func mentionsFlag(help, flag string) bool {
	return regexp.MustCompile(`(^|[\s\[|(])` + regexp.QuoteMeta(flag) + `($|[\s\]|=,)])`).MatchString(help)
}

// Command notices writes THIRD_PARTY_NOTICES, the licence notices of every
// module linked into secrets-sidecar, from the CycloneDX SBOMs that
// cyclonedx-gomod (app mode, -licenses) makes of the shipped binary's
// dependency graph, one per target platform. It does not decide licences
// itself: cyclonedx-gomod detects them; this program only checks that each
// module has one on the allowed list, copies the module's own licence and
// notice files from the module cache, and names where its source is (the
// exact version, as MPL-2.0 asks).
//
//	notices -out THIRD_PARTY_NOTICES sbom-amd64.json sbom-arm64.json
//	notices -check THIRD_PARTY_NOTICES sbom-amd64.json sbom-arm64.json
//
// -check fails when the file differs from what would be written (a new or
// bumped dependency: run `make notices`). Either fails, naming the module,
// for a module without a detected licence or with one not allowed.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// allowed are the licences compatible with shipping the binary under
// Apache-2.0 (LICENSE). A module under anything else fails the check until
// someone has looked at it and added it here.
var allowed = map[string]bool{
	"Apache-2.0":         true,
	"MIT":                true,
	"MPL-2.0":            true,
	"BSD-2-Clause":       true,
	"BSD-3-Clause":       true,
	"BSD-Source-Code":    true, // BSD-3-Clause worded without the list numbers
	"ISC":                true,
	"Unlicense":          true,
	"CC0-1.0":            true,
	"Zlib":               true,
	"BSD-2-Clause-Views": true,
}

type sbom struct {
	Metadata struct {
		Component component `json:"component"`
	} `json:"metadata"`
	Components []component `json:"components"`
}

type component struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Licenses []struct {
		License struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"license"`
		Expression string `json:"expression"`
	} `json:"licenses"`
	ExternalReferences []struct {
		URL  string `json:"url"`
		Type string `json:"type"`
	} `json:"externalReferences"`
}

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "notices:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("notices", flag.ContinueOnError)
	out := fs.String("out", "", "write the notices to this file")
	check := fs.String("check", "", "fail if this file differs from the notices")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*out == "") == (*check == "") || fs.NArg() == 0 {
		return errors.New("usage: notices -out FILE|-check FILE SBOM.json")
	}
	mods, goVersion, err := modules(fs.Args())
	if err != nil {
		return err
	}
	text, err := render(ctx, mods, goVersion)
	if err != nil {
		return err
	}
	if *out != "" {
		return os.WriteFile(*out, text, 0o644)
	}
	have, err := os.ReadFile(*check)
	if err != nil {
		return err
	}
	if !bytes.Equal(have, text) {
		return fmt.Errorf("%s is not what the dependency graph gives (a dependency was added, removed or bumped): run `make notices` and commit it", *check)
	}
	fmt.Printf("notices: %s is up to date: %d modules, every one under an allowed licence\n", *check, len(mods))
	return nil
}

// modules merges the SBOMs' components (the platforms may link different
// modules), skipping the main module (LICENSE) and the standard library
// (added from GOROOT by render: it is not a module in the cache), whose
// version, the toolchain's, it returns.
func modules(files []string) ([]component, string, error) {
	byKey := map[string]component{}
	goVersion := ""
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, "", err
		}
		var s sbom
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, "", fmt.Errorf("%s: %w", f, err)
		}
		if len(s.Components) == 0 {
			return nil, "", fmt.Errorf("%s: no components (not a cyclonedx-gomod SBOM?)", f)
		}
		for _, c := range s.Components {
			if c.Name == "std" {
				if goVersion != "" && goVersion != c.Version {
					return nil, "", fmt.Errorf("%s: std %s, another SBOM has %s: make them with one toolchain", f, c.Version, goVersion)
				}
				goVersion = c.Version
				continue
			}
			if c.Name == s.Metadata.Component.Name {
				continue
			}
			byKey[c.Name+"@"+c.Version] = c
		}
	}
	var mods []component
	var bad []string
	for _, c := range byKey {
		ids := licenceIDs(c)
		if len(ids) == 0 {
			bad = append(bad, fmt.Sprintf("%s@%s: no licence detected", c.Name, c.Version))
		}
		for _, id := range ids {
			if !allowed[id] {
				bad = append(bad, fmt.Sprintf("%s@%s: licence %q is not on the allowed list (scripts/notices/main.go)", c.Name, c.Version, id))
			}
		}
		mods = append(mods, c)
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return nil, "", fmt.Errorf("%d modules without a known, allowed licence:\n  %s", len(bad), strings.Join(bad, "\n  "))
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Name+"@"+mods[i].Version < mods[j].Name+"@"+mods[j].Version })
	if goVersion == "" {
		return nil, "", errors.New("the SBOMs have no std component: make them with cyclonedx-gomod -std")
	}
	return mods, goVersion, nil
}

func licenceIDs(c component) []string {
	var ids []string
	for _, l := range c.Licenses {
		switch {
		case l.License.ID != "":
			ids = append(ids, l.License.ID)
		case l.Expression != "":
			ids = append(ids, l.Expression)
		case l.License.Name != "":
			ids = append(ids, l.License.Name)
		}
	}
	return ids
}

// licenceFile matches the files a module's licence terms are in, at its root.
var licenceFile = regexp.MustCompile(`(?i)^(licen[cs]e|copying|notice|patents)([.-].*)?$`)

func render(ctx context.Context, mods []component, goVersion string) ([]byte, error) {
	dirs, err := moduleDirs(ctx, mods)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	seen := map[string]string{} // licence text -> the first module that has it
	b.WriteString("Third-party notices for secrets-sidecar\n\n" +
		"The secrets-sidecar binary is licensed under the Apache License 2.0 (LICENSE).\n" +
		"It links the Go standard library and runtime and the Go modules below, each\n" +
		"under its own licence, reproduced here from the module as published. The\n" +
		"source of each module at exactly the version linked is published on the Go\n" +
		"module proxy, and `go mod download -json MODULE@VERSION` fetches it; the\n" +
		"upstream repository is named too.\n\n" +
		"Generated by `make notices` (cyclonedx-gomod detects the licences); do not edit.\n")
	fmt.Fprintf(&b, "\nModules: %d, and the Go standard library.\n", len(mods))
	for _, c := range mods {
		fmt.Fprintf(&b, "  %s %s (%s)\n", c.Name, c.Version, strings.Join(licenceIDs(c), ", "))
	}

	goroot, err := exec.CommandContext(ctx, "go", "env", "GOROOT").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOROOT: %w", err)
	}
	goLicence, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(goroot)), "LICENSE"))
	if err != nil {
		return nil, fmt.Errorf("the Go standard library's licence: %w", err)
	}
	section(&b, "Go standard library and runtime", goVersion, "BSD-3-Clause",
		"the Go distribution "+goVersion+" (https://go.dev/dl/, https://go.googlesource.com/go)",
		[]named{{"LICENSE", goLicence}}, seen)

	for _, c := range mods {
		dir := dirs[c.Name+"@"+c.Version]
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("%s@%s: %w", c.Name, c.Version, err)
		}
		var files []named
		for _, e := range entries {
			if e.Type().IsRegular() && licenceFile.MatchString(e.Name()) {
				text, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					return nil, fmt.Errorf("%s@%s: %w", c.Name, c.Version, err)
				}
				files = append(files, named{e.Name(), text})
			}
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("%s@%s: no licence file at the module's root in %s", c.Name, c.Version, dir)
		}
		src := "go mod download -json " + c.Name + "@" + c.Version
		for _, r := range c.ExternalReferences {
			if r.Type == "vcs" {
				src += "; upstream " + r.URL
			}
		}
		section(&b, c.Name, c.Version, strings.Join(licenceIDs(c), ", "), src, files, seen)
	}
	return b.Bytes(), nil
}

type named struct {
	name string
	text []byte
}

// section writes one module's notice. A licence file word for word the
// same as one written above (the Apache-2.0 and MPL-2.0 texts, mostly) is
// named, not repeated: the document holds it once.
func section(b *bytes.Buffer, name, version, licence, source string, files []named, seen map[string]string) {
	fmt.Fprintf(b, "\n%s\n%s %s\nLicence: %s\nSource: %s\n", strings.Repeat("=", 78), name, version, licence, source)
	for _, f := range files {
		text := string(bytes.TrimRight(f.text, "\n \t"))
		if first, ok := seen[text]; ok {
			fmt.Fprintf(b, "\n--- %s: word for word the %s ---\n", f.name, first)
			continue
		}
		seen[text] = f.name + " of " + name + " " + version + " above"
		fmt.Fprintf(b, "\n--- %s ---\n\n%s\n", f.name, text)
	}
}

// moduleDirs downloads the modules (a no-op for those in the cache) and
// returns each one's directory.
func moduleDirs(ctx context.Context, mods []component) (map[string]string, error) {
	args := []string{"mod", "download", "-json"}
	for _, c := range mods {
		args = append(args, c.Name+"@"+c.Version)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	// Outside any module: the versions are exact, and the main module's
	// go.mod must not change what is downloaded.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		return nil, fmt.Errorf("go mod download: %w: %s", err, stderr.String())
	}
	dirs := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var m struct{ Path, Version, Dir, Error string }
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("go mod download: %w", err)
		}
		if m.Error != "" {
			return nil, fmt.Errorf("go mod download %s@%s: %s", m.Path, m.Version, m.Error)
		}
		dirs[m.Path+"@"+m.Version] = m.Dir
	}
	for _, c := range mods {
		if _, ok := dirs[c.Name+"@"+c.Version]; !ok {
			return nil, fmt.Errorf("go mod download gave no directory for %s@%s", c.Name, c.Version)
		}
	}
	return dirs, nil
}

package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocsStandAlone: a user has the repository only. Every relative link
// in its Markdown resolves to a file or directory inside it, and no text
// (docs, code comments, help) points at the development process: an
// issue number or a contract file that is not in the repository.
func TestDocsStandAlone(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	link := regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)
	process := regexp.MustCompile(`(?i)\bissues? #?[0-9]+\b|\bSPEC\.md\b|\.\./shared/|github\.com/[^/\s]+/[^/\s]+/(issues|pull)/[0-9]+`)
	// The repository's own pages (its releases, its files) are the only
	// web pages the docs may link: a user of a clone has nothing else.
	const own = "https://github.com/secrets-sidecar/secrets-sidecar/"
	checked := 0
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == ".git" || rel == "bin" || strings.HasPrefix(d.Name(), ".") && rel != "." && d.Name() != ".github" && d.Name() != ".ci" {
				return filepath.SkipDir
			}
			return nil
		}
		ext := filepath.Ext(path)
		if ext != ".md" && ext != ".go" && ext != ".sh" && ext != ".yaml" && ext != ".yml" && d.Name() != "Makefile" && d.Name() != "Dockerfile" {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		text := string(raw)
		if rel != filepath.Join("cmd", "secrets-sidecar", "docs_test.go") {
			if m := process.FindString(text); m != "" {
				t.Errorf("%s mentions %q: docs and comments must not point at the development process", rel, m)
			}
		}
		if ext != ".md" {
			return nil
		}
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") {
				if !strings.HasPrefix(target, own) {
					t.Errorf("%s links %s, outside the repository: name it, or put what the reader needs in the docs", rel, target)
				}
				continue
			}
			abs := filepath.Clean(filepath.Join(filepath.Dir(path), target))
			if r, err := filepath.Rel(root, abs); err != nil || strings.HasPrefix(r, "..") {
				t.Errorf("%s links %s, outside the repository", rel, target)
				continue
			}
			if _, err := os.Stat(abs); err != nil {
				t.Errorf("%s links %s, which does not exist", rel, target)
			}
			checked++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no relative links found: the walk is broken")
	}
}

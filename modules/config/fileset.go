package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// OutputFile is one file of a secret's files: set. The set's files change
// together (one rename switches them all), so a certificate is never seen
// beside another issuance's key. Unset mode, owner and group come from the
// secret (and so from defaults:).
type OutputFile struct {
	Destination  string   `yaml:"destination"`
	Mode         FileMode `yaml:"mode"`
	Owner        *int     `yaml:"owner"`
	Group        *int     `yaml:"group"`
	Template     string   `yaml:"template"`
	TemplateFile string   `yaml:"template_file"`
	Key          string   `yaml:"key"`
	Format       string   `yaml:"format"`
	// Content names a ready-made output: ContentChain, ContentBundle or
	// ContentPKCS12.
	Content string `yaml:"content"`
	// PasswordFile is the absolute path of the file holding a
	// ContentPKCS12 archive's password, read at every render; required
	// for that content, refused with any other output.
	PasswordFile string `yaml:"password_file"`

	// TemplateText and TemplateFirstLine are as Secret's.
	TemplateText      string `yaml:"-"`
	TemplateFirstLine int    `yaml:"-"`
}

// The named contents of a files: entry, for a PKI issuance's response.
const (
	// ContentChain is the certificate followed by its CA chain.
	ContentChain = "chain"
	// ContentBundle is the private key, the certificate and its CA chain in
	// one file: a reader of one file always gets a matching pair.
	ContentBundle = "bundle"
	// ContentPKCS12 is the private key, the certificate and its CA chain as
	// one binary PKCS#12 archive, encrypted with the password read from
	// the entry's PasswordFile. The renderer makes it in code, not through
	// a template (see PKCS12Output).
	ContentPKCS12 = "pkcs12"
)

// namedContents are the values of content:, in the order messages and the
// docs give them.
var namedContents = []string{ContentChain, ContentBundle, ContentPKCS12}

// contentTemplates are the named contents made as templates over a PKI
// response (certificate, private_key, ca_chain or issuing_ca).
var contentTemplates = map[string]string{
	ContentChain:  `{{ .certificate }}` + "\n" + chainTemplate,
	ContentBundle: `{{ .private_key }}` + "\n" + `{{ .certificate }}` + "\n" + chainTemplate,
}

const chainTemplate = `{{ with index . "ca_chain" | default "" }}{{ range fromJson . }}{{ . }}` + "\n" +
	`{{ end }}{{ else }}{{ with index . "issuing_ca" | default "" }}{{ . }}` + "\n" + `{{ end }}{{ end }}`

// setFileRe is a files: entry's file name: the set's links and
// directories (..NAME.data, ..NAME_*) can never be one.
var setFileRe = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}$`)

// HasFiles reports whether the secret writes a files: set.
func (s *Secret) HasFiles() bool { return len(s.Files) > 0 }

// SetDir is the directory of a files: set ("" without one).
func (s *Secret) SetDir() string {
	if !s.HasFiles() {
		return ""
	}
	return filepath.Dir(s.Files[0].Destination)
}

// Destinations are the paths the secret writes: its destination, or each
// file of its set.
func (s *Secret) Destinations() []string {
	if !s.HasFiles() {
		return []string{s.Destination}
	}
	out := make([]string, len(s.Files))
	for i, f := range s.Files {
		out[i] = f.Destination
	}
	return out
}

// Output is the secret as the i-th file of its set sees it: the same
// secret with that file's destination, mode, owner and output, and no set.
// A content: pkcs12 file has no template: its output says so to the
// renderer (PKCS12Output).
func (s *Secret) Output(i int) Secret {
	f := s.Files[i]
	o := *s
	o.Files = nil
	o.Destination, o.Mode, o.Owner, o.Group = f.Destination, f.Mode, f.Owner, f.Group
	o.Template, o.TemplateFile, o.Key, o.Format = f.Template, f.TemplateFile, f.Key, f.Format
	o.TemplateText, o.TemplateFirstLine = f.TemplateText, f.TemplateFirstLine
	if t, ok := contentTemplates[f.Content]; ok {
		o.Template, o.TemplateText, o.TemplateFirstLine = t, t, 0
		o.LeftDelimiter, o.RightDelimiter = "", ""
	}
	if f.Content == ContentPKCS12 {
		o.pkcs12, o.pkcs12Password = true, f.PasswordFile
		o.LeftDelimiter, o.RightDelimiter = "", ""
	}
	return o
}

// PKCS12Output reports whether s is the Output of a content: pkcs12 file,
// and that file's password file.
func (s *Secret) PKCS12Output() (passwordFile string, ok bool) {
	return s.pkcs12Password, s.pkcs12
}

// fileDefaults gives each file of s's set the secret's mode, owner and
// group where it sets none.
func fileDefaults(s *Secret) {
	for i := range s.Files {
		f := &s.Files[i]
		if !f.Mode.IsSet() {
			f.Mode = s.Mode
		}
		if f.Owner == nil {
			f.Owner = s.Owner
		}
		if f.Group == nil {
			f.Group = s.Group
		}
	}
}

// fileSet checks a secret's files: set; outputs are checked as the
// secret's own would be, under secrets[i].files[j].
func (v *validator) fileSet(c *Config, s *Secret, p string) {
	own := func(field string) bool { return v.idx.has(p + "." + field) }
	for _, f := range []string{"destination", "template", "template_file", "key", "format", "left_delimiter", "right_delimiter"} {
		if own(f) {
			v.add(p+"."+f, "set it on each entry of files: instead (a secret writes one destination or one files: set)")
		}
	}
	dir := ""
	names := map[string]int{}
	for j := range s.Files {
		f := &s.Files[j]
		fp := fmt.Sprintf("%s.files[%d]", p, j)
		if !v.destination(fp+".destination", f.Destination) {
			continue
		}
		base := filepath.Base(f.Destination)
		switch d := filepath.Dir(f.Destination); {
		case !setFileRe.MatchString(base):
			v.add(fp+".destination", "%q: a set's file name is 1-200 letters, digits, '_', '.' or '-', not starting with '.'", base)
		case dir == "":
			dir = d
		case d != dir:
			v.add(fp+".destination", "%q is not in %s: a set's files share one directory, so that one rename switches them all", f.Destination, dir)
		}
		if k, dup := names[base]; dup {
			v.add(fp+".destination", "duplicate file %q (also files[%d])", base, k)
		} else {
			names[base] = j
		}
		// Inherited values were checked where they were set.
		if own(fmt.Sprintf("files[%d].mode", j)) {
			v.mode(fp+".mode", f.Mode)
		}
		if own(fmt.Sprintf("files[%d].owner", j)) {
			v.id(fp+".owner", f.Owner)
		}
		if own(fmt.Sprintf("files[%d].group", j)) {
			v.id(fp+".group", f.Group)
		}
		v.fileOutput(c, s, j, fp)
	}
}

// fileOutput checks the j-th file's output (exactly one of template,
// template_file, key, format, content) and keeps its template text.
func (v *validator) fileOutput(c *Config, s *Secret, j int, fp string) {
	f := &s.Files[j]
	passwordOK := v.passwordFile(s, j, fp)
	if f.Content != "" {
		if !slices.Contains(namedContents, f.Content) {
			v.add(fp+".content", "%q is not a named content: %s or %s", f.Content,
				strings.Join(namedContents[:len(namedContents)-1], ", "), namedContents[len(namedContents)-1])
			return
		}
		for _, other := range []struct{ name, val string }{
			{"template", f.Template}, {"template_file", f.TemplateFile}, {"key", f.Key}, {"format", f.Format},
		} {
			if other.val != "" {
				v.add(fp+"."+other.name, "content and %s are mutually exclusive: set exactly one of template, template_file, key, format, content", other.name)
				return
			}
		}
		if !passwordOK {
			return // reported under password_file
		}
		o := s.Output(j)
		if err := v.compile(&o); err != nil {
			v.add(fp+".content", "%v", err)
		}
		return
	}
	o := s.Output(j)
	v.output(c, &o, fp)
	f.TemplateText, f.TemplateFirstLine = o.TemplateText, o.TemplateFirstLine
}

// passwordFile checks the j-th file's password_file: required by content:
// pkcs12, and an absolute path that is not a file of the set (the archive
// is made before the set is written, so it would take the old password);
// refused on any other output. The file itself may appear later: a
// missing one is a render error. It reports whether a pkcs12 entry's
// password_file is usable.
func (v *validator) passwordFile(s *Secret, j int, fp string) bool {
	f := &s.Files[j]
	field := fp + ".password_file"
	if v.idx.brokenAt(fp+".content") || (f.Content != "" && !slices.Contains(namedContents, f.Content)) {
		return false // the content is reported
	}
	given := v.nonEmpty(field, f.PasswordFile)
	switch {
	case f.Content != ContentPKCS12:
		if given {
			v.add(field, "only applies to content: %s", ContentPKCS12)
		}
		return false
	case !given:
		v.add(field, "required for content: %s (the absolute path of a file holding the archive's password)", ContentPKCS12)
		return false
	case f.PasswordFile == "":
		return false // "" was reported by nonEmpty, or the value failed to decode
	case !filepath.IsAbs(f.PasswordFile):
		v.add(field, "%q must be an absolute path", f.PasswordFile)
		return false
	}
	for k, o := range s.Files {
		if filepath.Clean(o.Destination) == filepath.Clean(f.PasswordFile) {
			v.add(field, "%q is files[%d] of this set, written after the archive is made: keep the password in a file of its own", f.PasswordFile, k)
			return false
		}
	}
	return true
}

// setEntriesApart refuses a destination that names one of a files: set's
// own entries (..NAME.data, ..NAME_*) in the set's directory: writing it
// would replace the set's link or directory.
func (v *validator) setEntriesApart(c *Config) {
	for i := range c.Secrets {
		set := &c.Secrets[i]
		if !set.HasFiles() || set.Name == "" {
			continue
		}
		dir, prefix := set.SetDir(), ".."+set.Name
		for j := range c.Secrets {
			s := &c.Secrets[j]
			if s.HasFiles() || filepath.Dir(s.Destination) != dir {
				continue
			}
			if base := filepath.Base(s.Destination); base == prefix+".data" || strings.HasPrefix(base, prefix+".data_tmp") || strings.HasPrefix(base, prefix+"_") {
				v.add(fmt.Sprintf("secrets[%d].destination", j), "%q is an entry of secrets[%d] %q's file set: choose another name", s.Destination, i, set.Name)
			}
		}
	}
}

// destination checks an absolute, clean file path; it reports whether
// the path is usable.
func (v *validator) destination(field, d string) bool {
	switch {
	case d == "":
		v.add(field, "required")
	case !filepath.IsAbs(d):
		v.add(field, "%q must be an absolute path", d)
	case strings.HasSuffix(d, "/") || filepath.Base(d) == "..":
		v.add(field, "%q must name a file, not a directory", d)
	case filepath.Clean(d) != d:
		// Cleaning it silently could write somewhere the reader did not
		// expect ("/vol/sub/../../etc/x").
		v.add(field, "%q is not a clean path; did you mean %q?", d, filepath.Clean(d))
	default:
		return true
	}
	return false
}

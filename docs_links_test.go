package courier_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// TestDocsLinks checks every relative link of the project's Markdown: the
// file it names exists, and so does the heading its #fragment names, as
// GitHub derives heading anchors. Docs that point at a moved section are
// found here rather than by a reader.
func TestDocsLinks(t *testing.T) {
	files, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "README.md", "bench/peers/README.md")
	anchors := map[string]map[string]bool{}
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range markdownLinks(string(text)) {
			target, fragment, _ := strings.Cut(l, "#")
			path := filepath.Clean(filepath.Join(filepath.Dir(f), target))
			if target == "" {
				path = filepath.Clean(f)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s: link %q: %v", f, l, err)
				continue
			}
			if fragment == "" || !strings.HasSuffix(path, ".md") {
				continue
			}
			if anchors[path] == nil {
				anchors[path] = headingAnchors(t, path)
			}
			if !anchors[path][fragment] {
				t.Errorf("%s: link %q: no heading of %s has the anchor %q", f, l, path, fragment)
			}
		}
	}
}

// linkRE matches an inline Markdown link's target; external ones are
// skipped by markdownLinks.
var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// headingRE matches an ATX heading and captures its text.
var headingRE = regexp.MustCompile(`^#{1,6}[ \t]+(.*?)[ \t#]*$`)

// fence tells whether line opens or closes a fenced code block.
func fence(line string) bool {
	l := strings.TrimSpace(line)
	return strings.HasPrefix(l, "```") || strings.HasPrefix(l, "~~~")
}

// markdownLinks returns the relative link targets of text, outside code
// blocks.
func markdownLinks(text string) []string {
	var out []string
	inCode := false
	for _, line := range strings.Split(text, "\n") {
		if fence(line) {
			inCode = !inCode
			continue
		}
		if inCode {
			continue
		}
		for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
			if !strings.Contains(m[1], "://") && !strings.HasPrefix(m[1], "mailto:") {
				out = append(out, m[1])
			}
		}
	}
	return out
}

// headingAnchors returns the anchors GitHub gives the headings of the
// Markdown file path: lower case, characters other than letters, marks,
// digits, '_', '-' and ' ' dropped, spaces made '-', and "-1", "-2", … on
// repeats.
func headingAnchors(t *testing.T, path string) map[string]bool {
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	seen := map[string]int{}
	inCode := false
	for _, line := range strings.Split(string(text), "\n") {
		if fence(line) {
			inCode = !inCode
		}
		m := headingRE.FindStringSubmatch(line)
		if inCode || m == nil {
			continue
		}
		heading := strings.TrimSpace(m[1])
		var b strings.Builder
		for _, r := range strings.ToLower(heading) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r) || unicode.Is(unicode.Pc, r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out[a+"-"+strconv.Itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

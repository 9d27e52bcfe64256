package inbox

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	l := NewLayout([]string{"Projects_X", " Invoice_Lines ", "", "leads"})
	tests := []struct {
		rel  string
		want Target
	}{
		{"Leads/1000000231009/contract.pdf", Target{"Leads", "1000000231009"}},
		{"Leads/3477061000005177002 Acme Ltd/website.url", Target{"Leads", "3477061000005177002"}},
		{"Leads/123-Acme/a.pdf", Target{"Leads", "123"}},
		{"Leads/123abc/a.pdf", Target{"Leads", "123"}},
		{"Leads/0042/a.pdf", Target{"Leads", "0042"}},
		{"Leads/1/scans/page1.jpg", Target{"Leads", "1"}},
		{"Leads/1/scans/2024/deep/page1.jpg", Target{"Leads", "1"}},
		{"Leads/1/no-extension", Target{"Leads", "1"}},
		{"leads/7/a.pdf", Target{"Leads", "7"}},
		{"LEADS/7/a.pdf", Target{"Leads", "7"}},
		{"price books/7/a.pdf", Target{"Price_Books", "7"}},
		{"Price Books/7/a.pdf", Target{"Price_Books", "7"}},
		{"PRICE_BOOKS/7/a.pdf", Target{"Price_Books", "7"}},
		{"Sales Orders/7/a.pdf", Target{"Sales_Orders", "7"}},
		{"purchase_orders/7/a.pdf", Target{"Purchase_Orders", "7"}},
		{"Appointments  s/7/a.pdf", Target{"Appointments__s", "7"}},
		{"appointments__S/7/a.pdf", Target{"Appointments__s", "7"}},
		{"Services _s/7/a.pdf", Target{"Services__s", "7"}},
		{"Projects_X/9/a.pdf", Target{"Projects_X", "9"}},
		{"projects x/9/a.pdf", Target{"Projects_X", "9"}},
		{"Invoice Lines/9/a.pdf", Target{"Invoice_Lines", "9"}},
		{"Deals/5 Société Générale/Überweisung 2024.pdf", Target{"Deals", "5"}},
		{"Contacts/5 山田太郎/名刺.jpg", Target{"Contacts", "5"}},
		{"Accounts/5/файлы/договор.pdf", Target{"Accounts", "5"}},
		{"Leads/" + strings.Repeat("9", 30) + "/a.pdf", Target{"Leads", strings.Repeat("9", 30)}},
		{"Leads/12345678901234567890/a.pdf", Target{"Leads", "12345678901234567890"}},
	}
	for _, tt := range tests {
		t.Run(tt.rel, func(t *testing.T) {
			got, err := l.Parse(tt.rel)
			if err != nil || got != tt.want {
				t.Fatalf("Parse(%q) = %+v, %v, want %+v, nil", tt.rel, got, err, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	l := NewLayout([]string{"Projects_X"})
	tests := []struct {
		name string
		rel  string
		want []string // substrings of Error()
	}{
		{"top level", "contract.pdf", []string{
			"contract.pdf: ", "not inside a module folder. Move it into a record folder such as Leads/1000000231009/"}},
		{"directly in module", "Leads/contract.pdf", []string{
			"Leads/contract.pdf: ", `directly in the "Leads" folder`, ". Put it inside a record folder such as Leads/1000000231009/"}},
		{"directly in module keeps the folder spelling", "price books/a.pdf", []string{
			`directly in the "price books" folder`, "such as price books/1000000231009/"}},
		{"unknown module", "Customers/123/a.pdf", []string{
			`"Customers" is not a CRM module folder`, ". Check the spelling", "Leads, Accounts, Contacts", "Services__s, Projects_X."}},
		{"typo gets a suggestion", "Lead/123/a.pdf", []string{
			`"Lead" is not a CRM module folder`, ". Did you mean Leads? Otherwise check the spelling; known modules: Leads"}},
		{"custom typo", "Project_X/123/a.pdf", []string{"Did you mean Projects_X?"}},
		{"unknown module with file directly in it", "Customers/a.pdf", []string{
			`"Customers" is not a CRM module folder`}},
		{"underscore folder", "_uploaded/Leads/1/a.pdf", []string{`"_uploaded" is not a CRM module folder`}},
		{"record folder without digits", "Leads/Acme Ltd/a.pdf", []string{
			`the folder "Acme Ltd" does not start with a record id`,
			". Rename it", "digits at the end of the record's address in Zoho CRM",
			`"1000000231009 Acme Ltd"`}},
		{"label before id", "Leads/Acme 123/a.pdf", []string{`"Acme 123" does not start with a record id`}},
		{"leading space", "Leads/ 123/a.pdf", []string{`" 123" does not start with a record id`}},
		{"non-ASCII digits", "Leads/١٢٣/a.pdf", []string{`"١٢٣" does not start with a record id`}},
		{"fullwidth digits", "Leads/１２３/a.pdf", []string{"does not start with a record id"}},
		{"absurd id", "Leads/" + strings.Repeat("1", 31) + "/a.pdf", []string{
			"starts with 31 digits, too many for a record id"}},
		{"empty segment", "Leads//a.pdf", []string{"not a plain path"}},
		{"dot dot", "Leads/../a.pdf", []string{"not a plain path"}},
		{"empty", "", []string{"not a plain path"}},
		{"leading slash", "/Leads/1/a.pdf", []string{"not a plain path"}},
		{"newline in name stays one line", "Leads/x\ny/a.pdf", []string{`Leads/x\ny/a.pdf: `, `"x\ny"`}},
		{"invalid utf-8 stays one line", "Le\xffads/1/a.pdf", []string{`Le\xffads/1/a.pdf: `}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := l.Parse(tt.rel)
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) = %+v, %v, want *PathError", tt.rel, got, err)
			}
			if got != (Target{}) {
				t.Errorf("Parse(%q) target = %+v, want zero", tt.rel, got)
			}
			if pe.Path != tt.rel {
				t.Errorf("Parse(%q).Path = %q", tt.rel, pe.Path)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("Parse(%q) error = %q, want it to contain %q", tt.rel, msg, w)
				}
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("Parse(%q) error spans lines: %q", tt.rel, msg)
			}
			if !strings.HasSuffix(msg, ".") && !strings.HasSuffix(msg, "?") {
				t.Errorf("Parse(%q) error = %q, want a full sentence", tt.rel, msg)
			}
		})
	}
}

func TestPathErrorFormat(t *testing.T) {
	e := &PathError{Path: "Leads/a.pdf", Problem: "it is wrong", Fix: "Do this."}
	if got, want := e.Error(), "Leads/a.pdf: it is wrong. Do this."; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestModules(t *testing.T) {
	l := NewLayout([]string{"Projects_X", "DEALS", " ", "projects x", "Zeta"})
	got := l.Modules()
	want := []string{
		"Leads", "Accounts", "Contacts", "Deals", "Campaigns", "Tasks", "Cases",
		"Events", "Calls", "Solutions", "Products", "Vendors", "Price_Books",
		"Quotes", "Sales_Orders", "Purchase_Orders", "Invoices", "Notes",
		"Appointments__s", "Services__s", "Projects_X", "Zeta",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Modules() = %q, want %q", got, want)
	}
	got[0] = "Changed"
	if l.Modules()[0] != "Leads" {
		t.Error("Modules() returned the layout's own slice")
	}
	if got := NewLayout(nil).Modules(); len(got) != 20 {
		t.Errorf("NewLayout(nil).Modules() has %d names, want 20", len(got))
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"Leads/1000000231009/contract.pdf", "Leads/3477061000005177002 Acme Ltd/scans/p1.jpg",
		"price books/1/a", "Appointments  s/1/a", "Projects_X/42-x/y/z", "a.pdf", "Leads/a.pdf",
		"Lead/1/a", "Leads/Acme/a", "Leads//a", "../x", "", "/", "Leads/" + strings.Repeat("1", 40) + "/a",
		"Contacts/5 山田/名刺.jpg", "Le\xffads/1/a",
	} {
		f.Add(s)
	}
	l := NewLayout([]string{"Projects_X"})
	known := l.Modules()
	f.Fuzz(func(t *testing.T, rel string) {
		got, err := l.Parse(rel)
		if err != nil {
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) error %T, want *PathError", rel, err)
			}
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("Parse(%q) error spans lines: %q", rel, msg)
			}
			return
		}
		if !slices.Contains(known, got.Module) {
			t.Fatalf("Parse(%q).Module = %q, not a known module", rel, got.Module)
		}
		if n := len(got.RecordID); n == 0 || n > maxRecordIDDigits {
			t.Fatalf("Parse(%q).RecordID = %q, bad length", rel, got.RecordID)
		}
		for _, c := range []byte(got.RecordID) {
			if c < '0' || c > '9' {
				t.Fatalf("Parse(%q).RecordID = %q, not all digits", rel, got.RecordID)
			}
		}
		if parts := strings.Split(rel, "/"); len(parts) < 3 || !strings.HasPrefix(parts[1], got.RecordID) {
			t.Fatalf("Parse(%q) = %+v, not from a Module/Record/file path", rel, got)
		}
	})
}

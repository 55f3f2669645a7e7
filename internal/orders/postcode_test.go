package orders

import "testing"

func TestPostcodeInState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		postcode, state string
		want            bool
	}{
		{"2000", "NSW", true}, // Sydney
		{"1001", "NSW", true}, // Sydney PO boxes
		{"2599", "NSW", true},
		{"2600", "NSW", false}, // Canberra
		{"2619", "NSW", true},
		{"2921", "NSW", true},
		{"2600", "ACT", true}, // Canberra
		{"2618", "ACT", true}, // Hall
		{"2618", "NSW", true}, // Wallaroo, shared with Hall
		{"2620", "ACT", true}, // Oaks Estate, Tharwa: Queanbeyan's postcode
		{"2620", "NSW", true}, // Queanbeyan
		{"2900", "ACT", true}, // Tuggeranong
		{"2914", "ACT", true},
		{"0200", "ACT", true}, // ANU
		{"0200", "NT", false},
		{"2921", "ACT", false},
		{"0800", "NT", true}, // Darwin
		{"0870", "NT", true}, // Alice Springs
		{"0999", "NT", true},
		{"0872", "SA", true}, // tri-border communities
		{"0872", "WA", true},
		{"0870", "SA", false},
		{"0800", "ACT", false},
		{"3000", "VIC", true}, // Melbourne
		{"8001", "VIC", true},
		{"3644", "NSW", true}, // Barooga
		{"3644", "VIC", true}, // Cobram
		{"3000", "NSW", false},
		{"4000", "QLD", true}, // Brisbane
		{"4870", "QLD", true}, // Cairns
		{"9726", "QLD", true},
		{"4383", "NSW", true}, // Jennings
		{"4000", "NSW", false},
		{"5000", "SA", true}, // Adelaide
		{"5999", "SA", true},
		{"5000", "WA", false},
		{"6000", "WA", true}, // Perth
		{"6798", "WA", true}, // Christmas Island
		{"6000", "SA", false},
		{"7000", "TAS", true}, // Hobart
		{"7250", "TAS", true}, // Launceston
		{"7000", "VIC", false},
		{"0100", "NT", false}, // unassigned
		{"0000", "ACT", false},
		{"2000", "XYZ", false},
		{"200", "NSW", false},
		{"20000", "NSW", false},
		{"2a00", "NSW", false},
		{"２０００", "NSW", false}, // full-width digits are not ASCII digits
		{"", "NSW", false},
	}
	for _, tt := range tests {
		verb := " is "
		if !tt.want {
			verb = " is not "
		}
		t.Run(tt.postcode+verb+"a postcode of "+tt.state, func(t *testing.T) {
			t.Parallel()
			if got := PostcodeInState(tt.postcode, tt.state); got != tt.want {
				t.Fatalf("PostcodeInState(%q, %q) = %v, want %v", tt.postcode, tt.state, got, tt.want)
			}
		})
	}
}

func TestEveryStateHasPostcodes(t *testing.T) {
	t.Parallel()
	for _, s := range States {
		if len(postcodeRanges[s]) == 0 || len(metroRanges[s]) == 0 {
			t.Errorf("state %s has no postcode or metro ranges", s)
		}
		for _, r := range metroRanges[s] {
			for _, n := range []int{r.lo, r.hi} {
				p := fixed(int64(n), 0)
				for len(p) < 4 {
					p = "0" + p
				}
				if !PostcodeInState(p, s) {
					t.Errorf("metro postcode %s is not a postcode of %s", p, s)
				}
			}
		}
	}
}

package orders

import (
	"fmt"
	"testing"
)

func addr(state, postcode string) Address {
	return Address{Line1: "1 Test St", Suburb: "Testville", State: state, Postcode: postcode, Country: "AU"}
}

func TestQuote(t *testing.T) {
	t.Parallel()
	books := Parcel{Weight: 2500, Length: 300, Width: 200, Height: 100}
	tests := []struct {
		name     string
		parcel   Parcel
		from, to Address
		want     string
	}{
		{"books from Sydney to Brisbane cost 10.95 + 5 × 1.50", books, addr("NSW", "2000"), addr("QLD", "4000"), "18.45"},
		{"books from Sydney to Parramatta cost 7.95 + 5 × 0.80", books, addr("NSW", "2000"), addr("NSW", "2150"), "11.95"},
		{"books from Sydney to Dubbo cost 8.95 + 5 × 1.10", books, addr("NSW", "2000"), addr("NSW", "2830"), "14.45"},
		{"books from Sydney to Cairns cost 13.95 + 5 × 2.00", books, addr("NSW", "2000"), addr("QLD", "4870"), "23.95"},
		{"books from Canberra to Darwin are interstate metro", books, addr("ACT", "2600"), addr("NT", "0800"), "18.45"},
		{"a light bulky box is billed by cubic weight", Parcel{Weight: 1000, Length: 500, Width: 400, Height: 300},
			addr("VIC", "3000"), addr("QLD", "4870"), "73.95"},
		{"the smallest parcel is billed one step", Parcel{Weight: 1, Length: 1, Width: 1, Height: 1},
			addr("NSW", "2000"), addr("NSW", "2000"), "8.75"},
		{"exactly 500 g is one step", Parcel{Weight: 500, Length: 10, Width: 10, Height: 10},
			addr("NSW", "2000"), addr("NSW", "2000"), "8.75"},
		{"501 g is two steps", Parcel{Weight: 501, Length: 10, Width: 10, Height: 10},
			addr("NSW", "2000"), addr("NSW", "2000"), "9.55"},
		{"the largest parcel is billed by its cubic weight of 432 kg", Parcel{Weight: 25000, Length: 1200, Width: 1200, Height: 1200},
			addr("WA", "6000"), addr("TAS", "7250"), "1741.95"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Quote(tt.parcel, tt.from, tt.to)
			if got != (Price{Amount: tt.want, Currency: "AUD"}) {
				t.Fatalf("Quote = %+v, want %s AUD", got, tt.want)
			}
			if again := Quote(tt.parcel, tt.from, tt.to); again != got {
				t.Fatalf("Quote is not deterministic: %+v then %+v", got, again)
			}
		})
	}
}

func TestChargeableWeight(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		parcel Parcel
		want   Grams
	}{
		{"a dense parcel is billed by its weight", Parcel{Weight: 2500, Length: 300, Width: 200, Height: 100}, 2500},
		{"a bulky parcel is billed by 250 kg per cubic metre", Parcel{Weight: 1000, Length: 500, Width: 400, Height: 300}, 15000},
		{"cubic weight rounds up to the next gram", Parcel{Weight: 1, Length: 1, Width: 1, Height: 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ChargeableWeight(tt.parcel); got != tt.want {
				t.Fatalf("ChargeableWeight = %d g, want %d g", got, tt.want)
			}
		})
	}
}

func TestLaneOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		from, to Address
		want     Lane
	}{
		{"two Sydney suburbs are a metro lane", addr("NSW", "2000"), addr("NSW", "2150"), LaneMetro},
		{"Sydney to Newcastle is intrastate", addr("NSW", "2000"), addr("NSW", "2300"), LaneIntrastate},
		{"Melbourne to Brisbane is interstate metro", addr("VIC", "3000"), addr("QLD", "4000"), LaneInterstateMetro},
		{"Perth to Launceston is interstate regional", addr("WA", "6000"), addr("TAS", "7250"), LaneInterstateRegional},
		{"Hall ACT to Queanbeyan NSW is interstate regional, Queanbeyan not being Sydney", addr("ACT", "2618"), addr("NSW", "2620"), LaneInterstateRegional},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := LaneOf(tt.from, tt.to); got != tt.want {
				t.Fatalf("LaneOf = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestAmountHasTwoDecimalPlaces(t *testing.T) {
	t.Parallel()
	for _, cents := range []int64{0, 5, 10, 99, 100, 805, 1845, 7395, 123456789} {
		if got, want := amount(cents), fmt.Sprintf("%d.%02d", cents/100, cents%100); got != want {
			t.Errorf("amount(%d) = %q, want %q", cents, got, want)
		}
	}
}

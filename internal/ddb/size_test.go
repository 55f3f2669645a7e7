package ddb

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestItemSize(t *testing.T) {
	item := map[string]types.AttributeValue{
		"id":   &types.AttributeValueMemberS{Value: "abcd"},                                                                         // 2 + 4
		"n":    &types.AttributeValueMemberN{Value: "12345"},                                                                        // 1 + (5+1)/2+1 = 1 + 4
		"data": &types.AttributeValueMemberB{Value: make([]byte, 10)},                                                               // 4 + 10
		"ok":   &types.AttributeValueMemberBOOL{Value: true},                                                                        // 2 + 1
		"m":    &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"k": &types.AttributeValueMemberS{Value: "v"}}}, // 1 + 3 + 1 + 1 + 1
		"l":    &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "xy"}}},              // 1 + 3 + 1 + 2
		"ss":   &types.AttributeValueMemberSS{Value: []string{"a", "bc"}},                                                           // 2 + 3
	}
	if got, want := ItemSize(item), 6+5+14+3+7+7+5; got != want {
		t.Errorf("ItemSize = %d, want %d", got, want)
	}
	for _, c := range []struct {
		n    string
		want int
	}{{"0", 1}, {"7", 2}, {"1000", 2}, {"-12.50", 3}, {"1796221985353", 8}, {"1.5e10", 2}} {
		if got := numberSize(c.n); got != c.want {
			t.Errorf("numberSize(%q) = %d, want %d", c.n, got, c.want)
		}
	}
}

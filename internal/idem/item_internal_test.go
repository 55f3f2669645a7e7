package idem

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestNewItemCondition(t *testing.T) {
	names := map[string]string{"#k": "pk", "#o": "other"}
	for _, tc := range []struct {
		name, cond string
		want       bool
	}{
		{"no condition is a new item's", "", true},
		{"attribute_not_exists of the key is a new item's", "attribute_not_exists(pk)", true},
		{"white space around every token is allowed", " \tattribute_not_exists \n( pk )\r ", true},
		{"the key through an attribute name is a new item's", "attribute_not_exists(#k)", true},
		{"another attribute is not the key", "attribute_not_exists(other)", false},
		{"another attribute through a name is not the key", "attribute_not_exists(#o)", false},
		{"an unknown attribute name is not the key", "attribute_not_exists(#zz)", false},
		{"attribute_exists is another condition", "attribute_exists(pk)", false},
		{"a conjunction is another condition", "attribute_not_exists(pk) AND size(pk) > 0", false},
		{"the function's name is case-sensitive", "ATTRIBUTE_NOT_EXISTS(pk)", false},
		{"a missing closing parenthesis is refused", "attribute_not_exists(pk", false},
		{"a missing opening parenthesis is refused", "attribute_not_exists pk)", false},
		{"an empty operand is refused", "attribute_not_exists( )", false},
		{"a bare # is refused", "attribute_not_exists(#)", false},
		{"two operands are refused", "attribute_not_exists(pk, pk)", false},
		{"a space inside the operand is refused", "attribute_not_exists(p k)", false},
		{"text after the call is refused", "attribute_not_exists(pk) x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &types.Put{ExpressionAttributeNames: names}
			if tc.cond != "" {
				p.ConditionExpression = aws.String(tc.cond)
			}
			if got := newItemCondition(p, "pk"); got != tc.want {
				t.Errorf("newItemCondition(%q) = %v, want %v", tc.cond, got, tc.want)
			}
		})
	}
}

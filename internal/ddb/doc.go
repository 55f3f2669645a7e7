// Package ddb holds what every DynamoDB adapter of this service shares: how a
// client is built from the environment, how a table is described once and
// created from that description, and the unit of work through which business
// writes join another component's transaction.
//
// It knows nothing about orders or idempotency; internal/orders and
// internal/idem both depend on it and never on each other.
package ddb

//! Tests for the openfaas adapter.

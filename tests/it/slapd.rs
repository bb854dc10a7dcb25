//! A throwaway slapd for the LDAP tests.

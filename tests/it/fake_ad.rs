//! A fake Active Directory served with ldap3_proto.

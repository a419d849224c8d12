//! Access control: which principal may do what (see `Acl`).

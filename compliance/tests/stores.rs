//! Every store kind passes the store suite.

compliance::store_suite!(sqlite, vault::StoreKind::Sqlite, durable);
compliance::store_suite!(memory, vault::StoreKind::Memory, ephemeral);

//! Pure helpers over ruma: PDUs, the client event format. No database, no HTTP.

pub mod canonical;
pub mod client_event;
pub mod filter;
pub mod pdu;

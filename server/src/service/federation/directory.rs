//! Other servers' public room directories, for a local client's `/publicRooms?server=` (spec:
//! server-server API, "Public Room Directory").

use ruma::{ServerName, UInt, api::federation::directory::get_public_rooms_filtered};

use super::{Federation, remote_error};
use crate::error::{Error, Result};

impl Federation {
    /// A page of `server`'s published rooms matching `term`. A server that cannot be reached
    /// or refuses gives the client 404 (its refusal's status when it is a 4xx), never a 5xx.
    pub async fn remote_public_rooms(
        &self,
        server: &ServerName,
        term: Option<&str>,
        limit: Option<UInt>,
        since: Option<&str>,
    ) -> Result<get_public_rooms_filtered::v1::Response> {
        let mut request = get_public_rooms_filtered::v1::Request::new();
        request.limit = limit;
        request.since = since.map(str::to_owned);
        request.filter.generic_search_term = term.map(str::to_owned);
        self.client
            .send(server, request)
            .await
            .map_err(|e| remote_error(e, "The server's room directory could not be read", Error::not_found))
    }
}

//! [`Store`] for [`PgStore`]: each method delegates to its module.

use super::PgStore;
use crate::store::{
    DeviceAuth, DispatcherAuth, EscalationRecord, FirstAttemptStats, IdempotencyState, OfficeWork,
    PushWork, RouteAccess, Store, StoreResult,
};
use doorstep_shared::dashboard::{DashboardMetrics, FleetSnapshot, RouteDetail, StopContext};
use doorstep_shared::protocol::{
    Change, CourierSummary, DeviceHealth, Escalation, RouteSummary, StopDetail, StoredEvent,
};
use doorstep_shared::{CourierId, DeviceId, EscalationId, RouteId, StopId, StopState};

impl Store for PgStore {
    fn ping(&self) -> StoreResult<()> {
        self.ping_impl()
    }
    fn create_courier(&self, courier_id: CourierId, name: &str, region: &str) -> StoreResult<()> {
        self.create_courier_impl(courier_id, name, region)
    }
    fn create_enrollment_code(
        &self,
        courier_id: CourierId,
        code_hash: &str,
        expires_at_ms: u64,
    ) -> StoreResult<()> {
        self.create_enrollment_code_impl(courier_id, code_hash, expires_at_ms)
    }
    fn enroll_device(
        &self,
        code_hash: &str,
        device_id: DeviceId,
        name: &str,
        token_hash: &str,
        public_key: Option<&str>,
        now_ms: u64,
    ) -> StoreResult<Option<CourierId>> {
        self.enroll_device_impl(code_hash, device_id, name, token_hash, public_key, now_ms)
    }
    fn device_by_token(&self, token_hash: &str) -> StoreResult<Option<DeviceAuth>> {
        self.device_by_token_impl(token_hash)
    }
    fn create_dispatcher(&self, name: &str, token_hash: &str) -> StoreResult<()> {
        self.create_dispatcher_impl(name, token_hash)
    }
    fn dispatcher_by_token(&self, token_hash: &str) -> StoreResult<Option<DispatcherAuth>> {
        self.dispatcher_by_token_impl(token_hash)
    }
    fn create_integration(
        &self,
        id: crate::store::ShipperId,
        name: &str,
        token_hash: &str,
    ) -> StoreResult<crate::store::ShipperId> {
        self.create_integration_impl(id, name, token_hash)
    }
    fn integration_by_token(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<crate::store::IntegrationAuth>> {
        self.integration_by_token_impl(token_hash)
    }
    fn order_unit(
        &self,
        shipper: crate::store::ShipperId,
        work: &mut crate::intake::OrderWork<'_>,
    ) -> StoreResult<()> {
        self.order_unit_impl(shipper, work)
    }
    fn order(
        &self,
        shipper: crate::store::ShipperId,
        external_id: &str,
    ) -> StoreResult<Option<(u32, doorstep_shared::order::Order)>> {
        self.order_impl(shipper, external_id)
    }
    fn push_unit(&self, device: DeviceId, work: &mut PushWork<'_>) -> StoreResult<()> {
        self.push_unit_impl(device, work)
    }
    fn pull(
        &self,
        courier: CourierId,
        cursor: u64,
        limit: u32,
    ) -> StoreResult<(Vec<Change>, bool)> {
        self.pull_impl(courier, cursor, limit)
    }
    fn watch_changes(&self, signal: crate::store::ChangeSignal) {
        self.watch_changes_impl(signal);
    }
    fn has_peers(&self) -> bool {
        true
    }
    fn publish_to_peers(&self, message: &str) -> StoreResult<()> {
        self.publish_to_peers_impl(message)
    }
    fn watch_peers(&self, sink: crate::store::PeerSink) {
        self.watch_peers_impl(sink);
    }
    fn latest_cursor(&self) -> StoreResult<u64> {
        self.latest_cursor_impl()
    }
    fn route_for_courier(&self, courier: CourierId, route: RouteId) -> StoreResult<RouteAccess> {
        self.route_for_courier_impl(courier, route)
    }
    fn route_owner(&self, route: RouteId) -> StoreResult<Option<CourierId>> {
        self.route_owner_impl(route)
    }
    fn office_unit(&self, work: &mut OfficeWork<'_>) -> StoreResult<()> {
        self.office_unit_impl(work)
    }
    fn begin_idempotent(
        &self,
        key: &str,
        request_hash: &str,
        now_ms: u64,
        lease_ms: u64,
    ) -> StoreResult<IdempotencyState> {
        self.begin_idempotent_impl(key, request_hash, now_ms, lease_ms)
    }
    fn finish_idempotent(&self, key: &str, status: u16, body: &str) -> StoreResult<()> {
        self.finish_idempotent_impl(key, status, body)
    }
    fn abandon_idempotent(&self, key: &str) -> StoreResult<()> {
        self.abandon_idempotent_impl(key)
    }
    fn open_escalation(&self, esc: &EscalationRecord<'_>) -> StoreResult<()> {
        self.open_escalation_impl(esc)
    }
    fn issue_live_ticket(
        &self,
        ticket_hash: &str,
        dispatcher: &str,
        expires_at_ms: u64,
        now_ms: u64,
    ) -> StoreResult<()> {
        self.issue_live_ticket_impl(ticket_hash, dispatcher, expires_at_ms, now_ms)
    }
    fn redeem_live_ticket(&self, ticket_hash: &str, now_ms: u64) -> StoreResult<Option<String>> {
        self.redeem_live_ticket_impl(ticket_hash, now_ms)
    }
    fn resolve_escalation(&self, id: EscalationId) -> StoreResult<bool> {
        self.resolve_escalation_impl(id)
    }
    fn couriers(&self) -> StoreResult<Vec<CourierSummary>> {
        self.couriers_impl()
    }
    fn device_health(&self) -> StoreResult<Vec<DeviceHealth>> {
        self.device_health_impl()
    }
    fn routes(&self) -> StoreResult<Vec<RouteSummary>> {
        self.routes_impl()
    }
    fn stop_detail(&self, stop: StopId) -> StoreResult<Option<StopDetail>> {
        self.stop_detail_impl(stop)
    }
    fn stop_state(&self, stop: StopId) -> StoreResult<Option<StopState>> {
        self.stop_state_impl(stop)
    }
    fn device_events(
        &self,
        device: DeviceId,
        after_seq: u64,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>> {
        self.device_events_impl(device, after_seq, limit)
    }
    fn escalations(&self, open_only: bool) -> StoreResult<Vec<Escalation>> {
        self.escalations_impl(open_only)
    }
    fn first_attempt_stats(&self) -> StoreResult<FirstAttemptStats> {
        self.first_attempt_stats_impl()
    }
    fn fleet(&self, now_ms: u64) -> StoreResult<FleetSnapshot> {
        self.fleet_impl(now_ms)
    }
    fn route_detail(&self, route: RouteId) -> StoreResult<Option<RouteDetail>> {
        self.route_detail_impl(route)
    }
    fn stop_context(&self, stop: StopId) -> StoreResult<Option<StopContext>> {
        self.stop_context_impl(stop)
    }
    fn dashboard_metrics(
        &self,
        now_ms: u64,
        bucket_ms: u64,
        buckets: u32,
    ) -> StoreResult<DashboardMetrics> {
        self.dashboard_metrics_impl(now_ms, bucket_ms, buckets)
    }
}

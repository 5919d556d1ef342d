//! A demo world: couriers, enrollment codes, a dispatcher token and one route per courier with
//! realistic stops around a depot. The world (ids included) is deterministic for a seed; the
//! secrets are always fresh.

use crate::auth;
use crate::service::{ApiResult, App};
use crate::store::Store;
use doorstep_shared::event::{EventPayload, GeoPoint, RouteAssigned, StopPlan, TimeWindow};
use doorstep_shared::{CourierId, ParcelBarcode, RouteId, StopId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug)]
pub struct SeedOptions {
    pub couriers: usize,
    pub stops_per_route: usize,
    pub seed: u64,
    /// Service day `YYYY-MM-DD`, and its start (Unix ms of 08:00 local).
    pub day: String,
    pub day_start_ms: u64,
    pub depot: GeoPoint,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeededCourier {
    pub courier_id: CourierId,
    pub name: String,
    pub route_id: RouteId,
    pub enrollment_code: String,
    pub stops: Vec<StopId>,
}

/// What seeding created; the secrets in it are shown once.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DemoSeed {
    pub dispatcher_token: String,
    pub couriers: Vec<SeededCourier>,
}

const FIRST: &[&str] = &[
    "Ada", "Bruno", "Chiara", "Dmitri", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kemal",
    "Lena", "Marta", "Nils", "Olga", "Pavel",
];
const LAST: &[&str] = &[
    "Novak", "Schmidt", "Rossi", "Yilmaz", "Kowalski", "Berg", "Dubois", "Silva", "Haas", "Moreau",
];
const STREETS: &[&str] = &[
    "Linden",
    "Garten",
    "Kastanien",
    "Mühlen",
    "Hafen",
    "Schul",
    "Berg",
    "Wiesen",
    "Kirch",
    "Rosen",
    "Birken",
    "Markt",
];
const NOTES: &[Option<&str>] = &[
    None,
    None,
    Some("Gate code 4711"),
    Some("Ring twice, 3rd floor"),
    Some("Concierge until 18:00"),
    Some("Back entrance via courtyard"),
    None,
];

fn uid(rng: &mut StdRng, ms: u64) -> uuid::Uuid {
    doorstep_shared::ids::uuid_v7(ms, rng.random())
}

/// Creates the demo world in `app`'s store.
pub async fn seed_demo<S: Store>(app: &App<S>, opts: &SeedOptions) -> ApiResult<DemoSeed> {
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let now = app.clock.now_ms();
    // The world comes from the seed; secrets never do.
    let dispatcher = auth::new_dispatcher_token(&mut rand::rng());
    let hash = dispatcher.hash.clone();
    app.with_store(move |s| s.create_dispatcher("demo dispatcher", &hash))
        .await?;
    let mut couriers = Vec::with_capacity(opts.couriers);
    for i in 0..opts.couriers {
        let courier_id = CourierId(uid(&mut rng, opts.day_start_ms));
        let name = format!(
            "{} {}",
            FIRST[i % FIRST.len()],
            LAST[(i / FIRST.len() + i) % LAST.len()]
        );
        let region = ["north", "south", "east", "west"][i % 4];
        let code = auth::new_enrollment_code(&mut rand::rng());
        let (n, hash) = (name.clone(), code.hash.clone());
        app.with_store(move |s| {
            s.create_courier(courier_id, &n, region)?;
            s.create_enrollment_code(courier_id, &hash, now + 30 * 24 * 3_600_000)
        })
        .await?;
        let route_id = RouteId(uid(&mut rng, opts.day_start_ms));
        let stops = plan_stops(&mut rng, opts, i);
        let stop_ids = stops.iter().map(|s| s.stop_id).collect();
        let plan = RouteAssigned {
            route_id,
            courier_id,
            day: opts.day.clone(),
            version: 1,
            depot: opts.depot,
            stops,
        };
        app.record_office(EventPayload::RouteAssigned(plan), "demo-seed")
            .await?;
        couriers.push(SeededCourier {
            courier_id,
            name,
            route_id,
            enrollment_code: code.plain,
            stops: stop_ids,
        });
    }
    Ok(DemoSeed {
        dispatcher_token: dispatcher.plain,
        couriers,
    })
}

fn plan_stops(rng: &mut StdRng, opts: &SeedOptions, courier: usize) -> Vec<StopPlan> {
    // Each courier works a wedge around the depot, about 1–6 km out.
    let heading = courier as f64 * std::f64::consts::TAU / opts.couriers.max(1) as f64;
    (0..opts.stops_per_route)
        .map(|n| {
            let angle = heading + rng.random_range(-0.35..0.35);
            let km = rng.random_range(1.0..6.0);
            let location = GeoPoint {
                lat: opts.depot.lat + km / 111.0 * angle.cos(),
                lon: opts.depot.lon
                    + km / (111.0 * opts.depot.lat.to_radians().cos()) * angle.sin(),
            };
            let start_h = rng.random_range(0..8u64);
            let len_h = [1u64, 2, 2, 3, 4][rng.random_range(0..5)];
            let start_ms = opts.day_start_ms + start_h * 3_600_000;
            let parcels = (0..rng.random_range(1..=3))
                .filter_map(|p| ParcelBarcode::parse(&format!("DS{courier:05}{n:04}{p}")).ok())
                .collect();
            StopPlan {
                stop_id: StopId(uid(rng, opts.day_start_ms)),
                sequence: n as u32 + 1,
                address: format!(
                    "{}straße {}, {}",
                    STREETS[rng.random_range(0..STREETS.len())],
                    rng.random_range(1..120),
                    10115 + rng.random_range(0..80) * 10
                ),
                location,
                window: TimeWindow {
                    start_ms,
                    end_ms: start_ms + len_h * 3_600_000,
                },
                parcels,
                customer_name: format!(
                    "{} {}",
                    FIRST[rng.random_range(0..FIRST.len())],
                    LAST[rng.random_range(0..LAST.len())]
                ),
                access_notes: NOTES[rng.random_range(0..NOTES.len())].map(str::to_owned),
                instructions: None,
            }
        })
        .collect()
}

//! The leases of a cosmos's machines (see `membership`), in the `leases` table: one row per
//! machine, times by the database's clock so that machines' clocks need not agree.
//!
//! Every statement is one conditional `UPDATE` or upsert, so two machines racing for the same
//! lease (a burial against a renewal, two processes of one name) are decided by the row lock:
//! exactly one wins. Nothing is run again after a broken connection — the first attempt may
//! have happened; the membership's next tick reads what did (`holder` makes a repeated
//! `acquire` by the same process take the lease; `buried_by` tells a burier its burial took).
//!
//! The leases have a small pool of their own, so a renewal never queues behind the registry's
//! traffic.

use std::time::Duration;

use async_trait::async_trait;

use super::PgRegistry;
use super::failure::Failure;
use crate::membership::{Lease, Leases};
use crate::registry::RegistryError;

/// Milliseconds, as PostgreSQL's `double precision` for `interval` arithmetic.
fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

impl PgRegistry {
    /// Runs one statement that changes leases, once; the number of rows it changed.
    async fn lease_update(
        &self,
        doing: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, RegistryError> {
        let outcome: Result<u64, Failure> = async {
            let client = self.leases_pool.get().await?;
            Ok(client.execute(sql, params).await?)
        }
        .await;
        outcome.map_err(|failure| failure.into_error(doing))
    }
}

#[async_trait]
impl Leases for PgRegistry {
    async fn acquire(
        &self,
        machine: &str,
        holder: u64,
        stars: u16,
        ttl: Duration,
    ) -> Result<Option<u64>, RegistryError> {
        let doing = format!("taking the lease of machine {machine}");
        let holder = i64::from_ne_bytes(holder.to_ne_bytes());
        let outcome: Result<Option<i64>, Failure> = async {
            let client = self.leases_pool.get().await?;
            let row = client
                .query_opt(
                    "INSERT INTO leases (machine, epoch, stars, expires_at, buried, holder) \
                     VALUES ($1, 1, $2, now() + $3 * interval '1 millisecond', false, $4) \
                     ON CONFLICT (machine) DO UPDATE SET epoch = leases.epoch + 1, \
                     stars = EXCLUDED.stars, expires_at = EXCLUDED.expires_at, buried = false, \
                     buried_by = NULL, holder = EXCLUDED.holder \
                     WHERE leases.buried OR leases.expires_at <= now() \
                     OR leases.holder = EXCLUDED.holder \
                     RETURNING epoch",
                    &[&machine, &i32::from(stars), &ms(ttl), &holder],
                )
                .await?;
            Ok(row.map(|row| row.try_get(0)).transpose()?)
        }
        .await;
        let epoch = outcome.map_err(|failure| failure.into_error(&doing))?;
        epoch
            .map(|epoch| {
                u64::try_from(epoch)
                    .map_err(|_| RegistryError::Storage(format!("{doing}: epoch {epoch}")))
            })
            .transpose()
    }

    async fn renew(&self, machine: &str, epoch: u64, ttl: Duration) -> Result<bool, RegistryError> {
        let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        let changed = self
            .lease_update(
                &format!("renewing the lease of machine {machine}"),
                "UPDATE leases SET expires_at = now() + $3 * interval '1 millisecond' \
                 WHERE machine = $1 AND epoch = $2 AND NOT buried AND expires_at > now()",
                &[&machine, &epoch, &ms(ttl)],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn leases(&self) -> Result<Vec<Lease>, RegistryError> {
        let outcome: Result<Vec<Lease>, Failure> = async {
            let client = self.leases_pool.get().await?;
            let rows = client
                .query(
                    "SELECT machine, epoch, stars, \
                     (EXTRACT(EPOCH FROM (expires_at - now())) * 1000)::float8, buried, \
                     buried_by FROM leases ORDER BY machine",
                    &[],
                )
                .await?;
            let mut leases = Vec::with_capacity(rows.len());
            for row in rows {
                let remaining: f64 = row.try_get(3)?;
                let epoch: i64 = row.try_get(1)?;
                let stars: i32 = row.try_get(2)?;
                leases.push(Lease {
                    machine: row.try_get(0)?,
                    epoch: u64::try_from(epoch).unwrap_or_default(),
                    stars: u16::try_from(stars).unwrap_or_default(),
                    remaining: (remaining > 0.0)
                        .then(|| Duration::from_secs_f64(remaining / 1000.0)),
                    buried: row.try_get(4)?,
                    buried_by: row.try_get(5)?,
                });
            }
            Ok(leases)
        }
        .await;
        outcome.map_err(|failure| failure.into_error("reading the machines' leases"))
    }

    async fn bury(&self, machine: &str, epoch: u64, by: &str) -> Result<bool, RegistryError> {
        let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        let changed = self
            .lease_update(
                &format!("declaring machine {machine} dead"),
                "UPDATE leases SET buried = true, buried_by = $3 \
                 WHERE machine = $1 AND epoch = $2 AND NOT buried AND expires_at <= now()",
                &[&machine, &epoch, &by],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn release(&self, machine: &str, epoch: u64) -> Result<(), RegistryError> {
        let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        self.lease_update(
            &format!("giving up the lease of machine {machine}"),
            "UPDATE leases SET expires_at = now() WHERE machine = $1 AND epoch = $2",
            &[&machine, &epoch],
        )
        .await?;
        Ok(())
    }
}

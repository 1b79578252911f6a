"""Commands of a split deployment: `gateway`, `cloud`, `admin gateway`, `admin sync`."""


import json
from typing import Annotated, Optional

import typer

GatewayId = Annotated[str, typer.Option("--id", help="Gateway id: 1-64 of A-Z a-z 0-9 . _ -")]
GatewayAdmin = typer.Typer(no_args_is_help=True, help="Hospital gateways allowed to forward to this cloud.")
SyncAdmin = typer.Typer(help="The gateway's forwarding queue to the cloud.", invoke_without_command=True)


def register(app: typer.Typer, admin: typer.Typer, common) -> None:
    """Add the split-deployment commands; `common` gives the shared option types and helpers of cli.main."""
    DataDir, DatabaseUrl, AsJson = common.DataDir, common.DatabaseUrl, common.AsJson
    open_runtime, fail, emit = common.open_runtime, common.fail, common.emit

    @app.command("gateway")
    def gateway(
        cloud_url: Annotated[str, typer.Option("--cloud-url", help="The cloud's base URL.")],
        gateway_id: Annotated[str, typer.Option("--gateway-id", help="This gateway's id on the cloud "
                                                                      "(`yingyun admin gateway add` there).")],
        gateway_key: Annotated[str, typer.Option("--gateway-key", envvar="YINGYUN_GATEWAY_KEY",
                                                 help="The key the cloud issued for this gateway.")],
        public_url: Annotated[str, typer.Option("--public-url", help="The cloud's public base (QR codes).")],
        data_dir: DataDir = None,
        database_url: DatabaseUrl = None,
        host: common.Host = "0.0.0.0",
        http_port: common.HttpPort = 8080,
        dicom_port: common.DicomPort = 11112,
        ae_title: common.AeTitle = "YINGYUN",
        tls_cert: common.TlsCert = None,
        tls_key: common.TlsKey = None,
        trusted_proxy: common.TrustedProxy = None,
        accept_any_ae: common.AcceptAnyAe = False,
        default_hospital: common.DefaultHospital = None,
        dicom_workers: common.DicomWorkers = 2,
        max_associations: common.MaxAssociations = common.Settings.max_associations,
        spool_days: Annotated[float, typer.Option("--spool-days", help="Keep forwarded instances this long.")] = 7.0,
        max_inflated_mib: common.MaxInflated = common.MAX_INFLATED_MIB,
        timezone: common.Timezone = common.DEFAULT_TIMEZONE,
    ) -> None:
        """Run the hospital side only: RIS API, DICOM receiver, spool, forwarding to the cloud."""
        from ..serve import run
        from ..settings import Settings, parse_proxies, resolve_data_dir, resolve_database_url

        ddir = resolve_data_dir(data_dir)
        run(Settings(data_dir=ddir, database_url=resolve_database_url(database_url, ddir), host=host,
                     http_port=http_port, dicom_port=dicom_port, ae_title=ae_title, public_url=public_url,
                     tls_cert=tls_cert, tls_key=tls_key, trusted_proxies=parse_proxies(trusted_proxy),
                     accept_any_ae=accept_any_ae, default_hospital=default_hospital, dicom_workers=dicom_workers,
                     max_associations=max_associations, role="gateway", cloud_url=cloud_url, gateway_id=gateway_id, gateway_key=gateway_key,
                     spool_days=spool_days, max_inflated_bytes=max_inflated_mib * 2**20,
                     timezone=timezone))

    @app.command("cloud")
    def cloud(
        data_dir: DataDir = None,
        database_url: DatabaseUrl = None,
        blob_url: common.BlobUrl = None,
        stable_seconds: common.StableSeconds = 60.0,
        host: common.Host = "0.0.0.0",
        http_port: common.HttpPort = 8080,
        public_url: common.PublicUrl = None,
        tls_cert: common.TlsCert = None,
        tls_key: common.TlsKey = None,
        trusted_proxy: common.TrustedProxy = None,
        workers: common.Workers = 1,
        timezone: common.Timezone = common.DEFAULT_TIMEZONE,
        verify: common.Verify = common.Settings.verify_method,
        sms_sender: common.SmsSender = common.Settings.sms_sender,
        sms_url: common.SmsUrl = None,
        cors_origin: common.CorsOrigin = None,
        rate_limit: common.RateLimit = common.Settings.thirdparty_rate_per_minute,
        max_experts: common.MaxExperts = common.Settings.consultation_max_experts,
        callback_timeout: common.CallbackTimeout = common.Settings.callback_timeout_s,
        callback_concurrency: common.CallbackConcurrency = common.Settings.callback_per_partner,
        max_inflated_mib: common.MaxInflated = common.MAX_INFLATED_MIB,
    ) -> None:
        """Run the cloud side only: gateways' uploads, partners' API, patient pages, DICOMweb."""
        from ..serve import run
        from ..settings import Settings, parse_proxies, resolve_data_dir, resolve_database_url

        if bool(tls_cert) != bool(tls_key):
            fail("--tls-cert and --tls-key go together")
        options = common.cloud_options(verify=verify, sms_sender=sms_sender, sms_url=sms_url, cors_origin=cors_origin,
                                       rate_limit=rate_limit, max_experts=max_experts,
                                       callback_timeout=callback_timeout, callback_concurrency=callback_concurrency)
        ddir = resolve_data_dir(data_dir)
        run(Settings(data_dir=ddir, database_url=resolve_database_url(database_url, ddir), host=host,
                     http_port=http_port, public_url=public_url or "", stable_seconds=stable_seconds, **options,
                     tls_cert=tls_cert, tls_key=tls_key, trusted_proxies=parse_proxies(trusted_proxy),
                     http_workers=workers, role="cloud", blob_url=blob_url or "", dicom_enabled=False,
                     max_inflated_bytes=max_inflated_mib * 2**20, timezone=timezone))

    admin.add_typer(GatewayAdmin, name="gateway")

    @GatewayAdmin.command("add")
    def gateway_add(id: GatewayId,
                    hospital: Annotated[str, typer.Option("--hospital", help="The hospital whose data it forwards.")],
                    key: Annotated[Optional[str], typer.Option("--key", help="At least 32 characters; generated if omitted.")] = None,
                    data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
        """Register a hospital's gateway (its key is printed once), or change an existing one."""
        from ..tenancy import Invalid, NotFound

        try:
            created, issued = open_runtime(data_dir, database_url).tenancy.add_gateway(gateway_id=id, hospital_id=hospital, key=key)
        except (Invalid, NotFound) as e:
            fail(str(e))
        typer.echo(f"gateway {id} {'added' if created else 'updated'}")
        if issued:
            typer.echo(f"key: {issued}")
            typer.echo("(shown once: give it to the gateway as --gateway-key)", err=True)

    @GatewayAdmin.command("list")
    def gateway_list(as_json: AsJson = False, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
        """Every registered gateway."""
        emit(open_runtime(data_dir, database_url).tenancy.list_gateways(), as_json, ["id", "hospitalId"])

    @GatewayAdmin.command("remove")
    def gateway_remove(id: GatewayId, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
        """Stop accepting a gateway's uploads; what it forwarded stays."""
        from ..tenancy import NotFound

        try:
            open_runtime(data_dir, database_url).tenancy.remove_gateway(gateway_id=id)
        except NotFound as e:
            fail(str(e))
        typer.echo(f"gateway {id} removed")

    admin.add_typer(SyncAdmin, name="sync")

    @SyncAdmin.callback()
    def sync_status_cmd(ctx: typer.Context, as_json: AsJson = False, timezone: common.Timezone = common.DEFAULT_TIMEZONE,
                        data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
        """Forwarding status: what is pending, parked, the last success and error."""
        if ctx.invoked_subcommand is not None:
            return
        from ..gateway.sync import sync_status

        status = sync_status(open_runtime(data_dir, database_url).db, zone=common.Zone(timezone))
        if as_json:
            typer.echo(json.dumps(status, ensure_ascii=False, indent=2))
        else:
            p = status["pending"]
            typer.echo(f"pending: {p['records']} records, {p['instances']} instances ({p['bytes'] / 1e6:.1f} MB); "
                       f"parked: {status['parked']}; oldest pending: {status['oldestPendingSeconds']:.0f} s; "
                       f"last success: {status['lastSuccessAt']}; last error: {status['lastError']}")

    @SyncAdmin.command("list")
    def sync_list(parked: Annotated[bool, typer.Option("--parked", help="Only parked items.")] = False,
                  as_json: AsJson = False, timezone: common.Timezone = common.DEFAULT_TIMEZONE,
                  data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
        """Items waiting to be forwarded, or parked after too many failures."""
        from ..gateway.sync import KIND
        from ..storage.queue import PARKED, PENDING, SqlJobQueue

        rt = open_runtime(data_dir, database_url)
        zone = common.Zone(timezone)
        rows = [{"id": j.pk, "eventId": j.event_id, "kind": j.payload.get("kind"), "state": j.state,
                 "attempts": j.attempts, "lastError": j.last_error, "createdAt": zone.show(j.created_at)}
                for j in SqlJobQueue(rt.db).list(kind=KIND, states=[PARKED] if parked else [PENDING, PARKED])]
        emit(rows, as_json, ["id", "kind", "state", "attempts", "lastError"])

    @SyncAdmin.command("replay")
    def sync_replay(id: Annotated[Optional[int], typer.Option("--id", help="One parked item (its id in `sync list`).")] = None,
                    all_: Annotated[bool, typer.Option("--all", help="Every parked item.")] = False,
                    data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
        """Queue parked items again."""
        import time

        from ..gateway.sync import KIND
        from ..storage.queue import SqlJobQueue

        if (id is None) == (not all_):
            fail("give --id ID or --all")
        n = SqlJobQueue(open_runtime(data_dir, database_url).db).replay(kind=KIND, now=time.time(), pk=id, all_parked=all_)
        typer.echo(f"{n} item(s) queued again")

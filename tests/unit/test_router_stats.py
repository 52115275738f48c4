"""Runtime API answers (captured from haproxy 2.6) -> counters; cumulative across resets."""

from __future__ import annotations

import pytest

from nodeagent.router.config import ServerRef
from nodeagent.router.runtime_api import RuntimeAPIError, parse_info, parse_servers_state, parse_stat
from nodeagent.router.stats import CounterBook, Counters, per_container, raw_counters, router_stats

HEADER = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,"
FRONTEND = "ccs_http,FRONTEND,,,0,0,4096,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,0,,,,0,0,0,0,0,0,,0,0,0,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,http,,0,0,0,0,0,0,0,,,0,0,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"
BACKEND = "be_shop_web_2f706e35,BACKEND,0,0,0,0,410,0,0,0,0,0,,0,0,0,0,DOWN,0,0,0,,1,0,0,,1,3,0,,0,,1,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,0,0,0,0,-1,,,0,0,0,0,,,,,,,,,,,,,,http,roundrobin,,,,,,,0,0,0,0,0,,,0,0,0,0,0,,,,,0,0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"
ROW = "be_shop_web_2f706e35,web-1,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,10,1,0,1,1,0,0,,1,3,1,,0,,2,0,,0,L4CON,,0,0,0,0,0,0,0,,,,0,0,0,,,,,-1,Connection refused,,0,0,0,0,,,,Layer4 connection problem,,2,3,0,,,,127.0.0.1:19382,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,10,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,"


def server_row(name: str, stot: int, econ: int, eresp: int, hrsp_5xx: int) -> str:
    names = HEADER[2:].split(",")
    values = ROW.split(",")
    values[1] = name
    for field, value in (("stot", stot), ("econ", econ), ("eresp", eresp), ("hrsp_5xx", hrsp_5xx)):
        values[names.index(field)] = str(value)
    return ",".join(values)


def show_stat(*rows: str) -> str:
    return "\n".join((HEADER, FRONTEND, *rows, BACKEND)) + "\n\n"


STATE = '1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n3 be_shop_web_2f706e35 1 web-1 127.0.0.1 0 0 10 10 0 8 2 0 6 0 0 0 - 19382 - 0 0 - - 0\n\n\n'
BE = "be_shop_web_2f706e35"


def test_parse_stat_rows_and_server_counters() -> None:
    rows = parse_stat(show_stat(server_row("web-1", 12, 1, 2, 3), server_row("web-2", 5, 0, 0, 0)))
    assert [(r["pxname"], r["svname"], r["type"]) for r in rows] == [
        ("ccs_http", "FRONTEND", "0"), (BE, "web-1", "2"), (BE, "web-2", "2"), (BE, "BACKEND", "1"),
    ]
    assert raw_counters(rows) == {(BE, "web-1"): Counters(12, 3, 3), (BE, "web-2"): Counters(5, 0, 0)}


def test_parse_servers_state_and_info() -> None:
    (row,) = parse_servers_state(STATE)
    assert (row["be_name"], row["srv_name"], row["srv_uweight"], row["srv_port"]) == (BE, "web-1", "10", "19382")
    assert parse_info("Name: HAProxy\nVersion: 2.6.12\nPid: 4242\n")["Pid"] == "4242"


@pytest.mark.parametrize("answer", ["No such backend.\n", "Unknown command: 'shw stat'\n", "garbage"])
def test_errors_and_garbage_raise(answer: str) -> None:
    with pytest.raises(RuntimeAPIError):
        parse_stat(answer)


def test_counters_stay_cumulative_across_resets() -> None:
    book = CounterBook()
    a, b = (BE, "web-1"), (BE, "web-2")
    assert book.observe({a: Counters(10, 1, 0), b: Counters(4, 0, 0)}) == {a: Counters(10, 1, 0), b: Counters(4, 0, 0)}
    # a restart (drop detected) and a reload the supervisor announced (reset_expected)
    assert book.observe({a: Counters(3, 0, 1), b: Counters(6, 0, 0)})[a] == Counters(13, 1, 1)
    book.reset_expected()
    totals = book.observe({a: Counters(20, 0, 0)})  # grew past the old value: not a detectable drop
    assert totals == {a: Counters(33, 1, 1), b: Counters(6, 0, 0)}  # b left the config: keeps its total


def test_per_container_sums_backends_and_drops_unknown_servers() -> None:
    ref = ServerRef("shop", "web", "web-1")
    totals = {(BE, "web-1"): Counters(10, 2, 1), (f"{BE}_ab", "web-1"): Counters(5, 1, 0), ("x", "y"): Counters(9)}
    (stats,) = per_container(totals, {(BE, "web-1"): ref, (f"{BE}_ab", "web-1"): ref})
    assert (stats.application, stats.service, stats.container) == ("shop", "web", "web-1")
    assert (stats.requests, stats.responses_5xx, stats.connection_errors) == (15, 3, 1)
    rs = router_stats([stats], node="n1", version=7, now=1_700_000_000.5)
    assert (rs.node, rs.routing_version, rs.collected_at.seconds, len(rs.backends)) == ("n1", 7, 1_700_000_000, 1)

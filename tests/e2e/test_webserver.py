"""dagster-webserver on loopback serves our code location; its GraphQL API lists our assets."""

import shutil

from tests.e2e.servers import BIN, REPO, free_port, graphql, start, stop, wait_http

EXPECTED = {
    "titles", "shots", "video_embeddings", "audio_embeddings", "text_embeddings",
    "title_metadata_embedding", "fused_shots", "encoder_checkpoint", "contextual_embeddings",
    "title_embeddings", "linear_probes",
}  # fmt: skip


def test_webserver_answers_and_graphql_lists_our_assets(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home)
    port = free_port()
    log = tmp_path / "webserver.log"
    env = {"DAGSTER_HOME": str(home), "MEDIAFM_ROOT": str(tmp_path / "storage")}
    proc = start([str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port),
                  "-w", str(REPO / "workspace.yaml")], env, log)  # fmt: skip
    try:
        wait_http(port, "/server_info", proc, log, timeout=120)
        page = wait_http(port, "/asset-groups", proc, log, timeout=30)
        assert "<html" in page.lower()
        data = graphql(port, "{ assetNodes { assetKey { path } groupName isPartitioned } }")
        nodes = {n["assetKey"]["path"][-1]: n for n in data["data"]["assetNodes"]}
        assert set(nodes) == EXPECTED
        assert nodes["contextual_embeddings"]["groupName"] == "serving"
        assert nodes["shots"]["isPartitioned"] and not nodes["encoder_checkpoint"]["isPartitioned"]
        sensors = graphql(port, '{ sensorsOrError(repositorySelector: {repositoryName: '
                          '"__repository__", repositoryLocationName: "mediafm"}) '
                          '{ ... on Sensors { results { name } } } }')  # fmt: skip
        names = {s["name"] for s in sensors["data"]["sensorsOrError"]["results"]}
        assert {"title_arrival_sensor", "reembed_on_new_checkpoint"} <= names
    finally:
        stop(proc)
    assert proc.returncode is not None

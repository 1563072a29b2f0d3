// Calls each RPC of routeguide.RouteGuide once and prints what comes back.
#include <cstdio>
#include <string>

#include "common/cli.h"
#include "route_guide/points.h"
#include "routeguide/route_guide.micro.h"

namespace {

using route_guide::MakePoint;

using routeguide::Feature;
using routeguide::Point;
using routeguide::RouteNote;

// Prints the failure and returns false when `status` is not OK.
bool Check(const char* rpc, const absl::Status& status) {
  if (!status.ok()) std::fprintf(stderr, "%s failed: %s\n", rpc, status.ToString().c_str());
  return status.ok();
}

}  // namespace

int main(int argc, char** argv) {
  auto flags = micro::examples::ParseFlags(argc, argv, {});
  auto transport = micro::examples::ConnectOrExit(flags["nats"], "route_guide_client");
  auto stub = routeguide::RouteGuide::NewStub(std::make_shared<micro::Client>(transport));
  bool ok = true;

  {  // Unary.
    micro::ClientContext context;
    context.set_timeout(absl::Seconds(5));
    Feature feature;
    ok &=
        Check("GetFeature", stub->GetFeature(&context, MakePoint(407838351, -746143763), &feature));
    std::printf("GetFeature: '%s'\n", feature.name().c_str());
  }
  {  // Server streaming.
    micro::ClientContext context;
    context.set_timeout(absl::Seconds(5));
    routeguide::Rectangle area;
    *area.mutable_lo() = MakePoint(400000000, -750000000);
    *area.mutable_hi() = MakePoint(420000000, -730000000);
    auto reader = stub->ListFeatures(&context, area);
    Feature feature;
    while (reader->Read(&feature)) std::printf("ListFeatures: '%s'\n", feature.name().c_str());
    ok &= Check("ListFeatures", reader->Finish());
  }
  {  // Client streaming.
    micro::ClientContext context;
    context.set_timeout(absl::Seconds(5));
    routeguide::RouteSummary summary;
    auto writer = stub->RecordRoute(&context, &summary);
    for (const Point& point : {MakePoint(407838351, -746143763), MakePoint(408122808, -743999179),
                               MakePoint(413628156, -749015468)}) {
      if (!writer->Write(point)) break;
    }
    writer->WritesDone();
    ok &= Check("RecordRoute", writer->Finish());
    std::printf("RecordRoute: %d points, %d features, %d m\n", summary.point_count(),
                summary.feature_count(), summary.distance());
  }
  {  // Bidirectional streaming.
    micro::ClientContext context;
    context.set_timeout(absl::Seconds(5));
    auto stream = stub->RouteChat(&context);
    for (const char* text : {"first", "second", "third"}) {
      RouteNote note;
      *note.mutable_location() = MakePoint(1, 1);
      note.set_message(text);
      if (!stream->Write(note)) break;
    }
    stream->WritesDone();
    RouteNote note;
    while (stream->Read(&note))
      std::printf("RouteChat: earlier note '%s'\n", note.message().c_str());
    ok &= Check("RouteChat", stream->Finish());
  }
  return ok ? 0 : 1;
}

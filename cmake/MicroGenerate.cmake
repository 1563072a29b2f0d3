# micro_generate(<target> PROTOS <files...> [IMPORT_DIRS <dirs...>] [OUT_DIR <dir>]
#                [EXPORT_MACRO <macro>] [SUFFIX <suffix>])
#
# Runs protoc with the C++ generator and protoc-gen-micro on each proto, adds
# the generated <base>.pb.cc and <base><suffix>.cc to <target>, puts the output
# directory on its (public) include path and links it to micro::micro. The
# link uses the keyword signature, so link <target> to anything else with
# PUBLIC, PRIVATE or INTERFACE as well.
#
# Generated files keep each proto's path relative to the import directory
# that contains it, so `import "a/b.proto"` becomes `#include "a/b.pb.h"`.
# IMPORT_DIRS defaults to the directory of each proto; protoc finds the
# well-known types (google/protobuf/*.proto) by itself. OUT_DIR defaults to
# ${CMAKE_CURRENT_BINARY_DIR}/micro_generated.
#
# EXPORT_MACRO puts <macro> on every generated class and function, protoc's
# C++ code included (its dllexport_decl), for a shared library built with
# hidden visibility; the build of <target> defines <macro>, e.g. as
# __attribute__((visibility("default"))).
# SUFFIX (default .micro) makes protoc-gen-micro write <base><suffix>.h and
# <base><suffix>.cc.
#
# The code is generated again when a proto, a proto it imports (read from
# protoc's dependency file), protoc or the plugin changes, and only then.

# Our depfiles hold absolute paths; with CMP0116 NEW, Ninja reads them as
# CMake documents. include() scopes this setting, and the function keeps it.
cmake_policy(SET CMP0116 NEW)

function(micro_generate target)
  cmake_parse_arguments(ARG "" "OUT_DIR;EXPORT_MACRO;SUFFIX" "PROTOS;IMPORT_DIRS" ${ARGN})
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "micro_generate(${target}): unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT ARG_PROTOS)
    message(FATAL_ERROR "micro_generate(${target}): PROTOS is required")
  endif()
  if(NOT ARG_OUT_DIR)
    set(ARG_OUT_DIR "${CMAKE_CURRENT_BINARY_DIR}/micro_generated")
  endif()
  if(NOT DEFINED ARG_SUFFIX)
    set(ARG_SUFFIX ".micro")
  endif()
  if(TARGET protoc-gen-micro)
    set(plugin protoc-gen-micro)
  elseif(TARGET micro::protoc-gen-micro)
    set(plugin micro::protoc-gen-micro)
  else()
    message(FATAL_ERROR "micro_generate: no protoc-gen-micro target; use find_package(Micro)")
  endif()
  # Imported targets are visible only below the directory that found them;
  # this makes protoc visible where micro is an add_subdirectory() too.
  if(NOT TARGET protobuf::protoc)
    find_package(Protobuf REQUIRED)
  endif()

  set(cpp_out "${ARG_OUT_DIR}")
  set(micro_options "suffix=${ARG_SUFFIX}")
  if(ARG_EXPORT_MACRO)
    set(cpp_out "dllexport_decl=${ARG_EXPORT_MACRO}:${ARG_OUT_DIR}")
    string(APPEND micro_options ",export_macro=${ARG_EXPORT_MACRO}")
  endif()

  set(import_dirs "")
  foreach(dir IN LISTS ARG_IMPORT_DIRS)
    get_filename_component(dir "${dir}" ABSOLUTE)
    list(APPEND import_dirs "${dir}")
  endforeach()

  set(generated "")
  foreach(proto IN LISTS ARG_PROTOS)
    get_filename_component(proto "${proto}" ABSOLUTE)
    set(relative "")
    foreach(dir IN LISTS import_dirs)
      file(RELATIVE_PATH candidate "${dir}" "${proto}")
      if(NOT candidate MATCHES "^\\.\\./")
        set(relative "${candidate}")
        break()
      endif()
    endforeach()
    set(include_flags "")
    foreach(dir IN LISTS import_dirs)
      list(APPEND include_flags "-I${dir}")
    endforeach()
    if(relative STREQUAL "")
      get_filename_component(proto_dir "${proto}" DIRECTORY)
      get_filename_component(relative "${proto}" NAME)
      list(APPEND include_flags "-I${proto_dir}")
    endif()
    string(REGEX REPLACE "\\.proto$" "" stem "${relative}")
    set(outputs
      "${ARG_OUT_DIR}/${stem}.pb.h" "${ARG_OUT_DIR}/${stem}.pb.cc"
      "${ARG_OUT_DIR}/${stem}${ARG_SUFFIX}.h" "${ARG_OUT_DIR}/${stem}${ARG_SUFFIX}.cc")
    # protoc lists the outputs sorted in its dependency file, and Ninja
    # ignores a dependency file whose first output is not the rule's first.
    list(SORT outputs)
    set(depfile "${ARG_OUT_DIR}/${stem}${ARG_SUFFIX}.d")
    add_custom_command(
      OUTPUT ${outputs}
      COMMAND "${CMAKE_COMMAND}" -E make_directory "${ARG_OUT_DIR}"
      COMMAND protobuf::protoc
        "--plugin=protoc-gen-micro=$<TARGET_FILE:${plugin}>"
        "--cpp_out=${cpp_out}" "--micro_out=${ARG_OUT_DIR}" "--micro_opt=${micro_options}"
        "--dependency_out=${depfile}"
        ${include_flags} "${proto}"
      DEPENDS "${proto}" ${plugin} protobuf::protoc
      DEPFILE "${depfile}"
      COMMENT "micro_generate: ${relative}"
      VERBATIM)
    list(APPEND generated ${outputs})
  endforeach()

  target_sources(${target} PRIVATE ${generated})
  target_include_directories(${target} PUBLIC "$<BUILD_INTERFACE:${ARG_OUT_DIR}>")
  target_link_libraries(${target} PUBLIC micro::micro)
endfunction()

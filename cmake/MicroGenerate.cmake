# micro_generate(<target> PROTOS <files...> [IMPORT_DIRS <dirs...>] [OUT_DIR <dir>])
#
# Runs protoc with the C++ generator and protoc-gen-micro on each proto, adds
# the generated <base>.pb.cc and <base>.micro.cc to <target>, puts the output
# directory on its (public) include path and links it to micro::micro.
#
# Generated files keep each proto's path relative to the import directory
# that contains it, so `import "a/b.proto"` becomes `#include "a/b.pb.h"`.
# IMPORT_DIRS defaults to the directory of each proto; OUT_DIR defaults to
# ${CMAKE_CURRENT_BINARY_DIR}/micro_generated.
function(micro_generate target)
  cmake_parse_arguments(ARG "" "OUT_DIR" "PROTOS;IMPORT_DIRS" ${ARGN})
  if(NOT ARG_PROTOS)
    message(FATAL_ERROR "micro_generate(${target}): PROTOS is required")
  endif()
  if(NOT ARG_OUT_DIR)
    set(ARG_OUT_DIR "${CMAKE_CURRENT_BINARY_DIR}/micro_generated")
  endif()
  if(TARGET protoc-gen-micro)
    set(plugin protoc-gen-micro)
  elseif(TARGET micro::protoc-gen-micro)
    set(plugin micro::protoc-gen-micro)
  else()
    message(FATAL_ERROR "micro_generate: no protoc-gen-micro target; use find_package(Micro)")
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
      "${ARG_OUT_DIR}/${stem}.micro.h" "${ARG_OUT_DIR}/${stem}.micro.cc")
    add_custom_command(
      OUTPUT ${outputs}
      COMMAND "${CMAKE_COMMAND}" -E make_directory "${ARG_OUT_DIR}"
      COMMAND protobuf::protoc
        "--plugin=protoc-gen-micro=$<TARGET_FILE:${plugin}>"
        "--cpp_out=${ARG_OUT_DIR}" "--micro_out=${ARG_OUT_DIR}"
        ${include_flags} "${proto}"
      DEPENDS "${proto}" ${plugin} protobuf::protoc
      COMMENT "micro_generate: ${relative}"
      VERBATIM)
    list(APPEND generated ${outputs})
  endforeach()

  target_sources(${target} PRIVATE ${generated})
  target_include_directories(${target} PUBLIC "$<BUILD_INTERFACE:${ARG_OUT_DIR}>")
  target_link_libraries(${target} PUBLIC micro::micro)
endfunction()

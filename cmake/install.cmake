# Installs headers, libraries, the gradpath command and a CMake package, so another
# project can `find_package(gradpath CONFIG REQUIRED)` and link gradpath::gradpath.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(GRADPATH_MODULES autodiff ops graph check)
set(GRADPATH_INSTALL_TARGETS gradpath gradpath_warnings)
foreach(module ${GRADPATH_MODULES})
  if(TARGET gradpath_${module})
    set_target_properties(gradpath_${module} PROPERTIES EXPORT_NAME ${module})
    list(APPEND GRADPATH_INSTALL_TARGETS gradpath_${module})
    install(DIRECTORY ${PROJECT_SOURCE_DIR}/${module} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/gradpath
            FILES_MATCHING PATTERN "*.hpp")
  endif()
endforeach()
set_target_properties(gradpath_warnings PROPERTIES EXPORT_NAME warnings)
if(TARGET gradpath_cli)
  install(TARGETS gradpath_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

install(TARGETS ${GRADPATH_INSTALL_TARGETS} EXPORT gradpathTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT gradpathTargets NAMESPACE gradpath:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/gradpath)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/gradpathConfig.cmake.in
  ${PROJECT_BINARY_DIR}/gradpathConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/gradpath)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/gradpathConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/gradpathConfig.cmake ${PROJECT_BINARY_DIR}/gradpathConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/gradpath)
